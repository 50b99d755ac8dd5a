/**
 * `npm run bench:sse`: only the memory step of `npm run bench` — RSS per idle SSE stream held
 * open through a fresh gateway (default configuration, JWT route `/mcp`), measured like the full
 * run does it (`measureSse`: 100 warm-up streams, then 1,000 more, a full garbage collection
 * through the inspector before each reading), repeated on a new gateway each time. Memory is
 * hardly moved by CPU noise, so this can be run on its own to judge a change to the streaming
 * path; the load generator is not needed.
 *
 *   npm run bench:sse                 # 3 repetitions
 *   npm run bench:sse -- --reps 5
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openLoop, toolsCallSpec } from "./load.js";
import { haveProc, processTree } from "./proc.js";
import { measureSse } from "./sse.js";
import { INSPECT, startBenchFixture, startTollgate, type BenchFixture, type Child } from "./targets.js";

const SSE_STREAMS = 1000;
const args = process.argv.slice(2);
const repsAt = args.indexOf("--reps");
const REPS = repsAt >= 0 ? Number(args[repsAt + 1]) : 3;

const log = (msg: string) => process.stdout.write(`${msg}\n`);

async function main(): Promise<void> {
  if (!haveProc()) {
    log("This benchmark reads memory from /proc and runs on Linux only.");
    process.exitCode = 1;
    return;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-bench-sse-"));
  const children: Child[] = [];
  let fixture: BenchFixture | undefined;
  const results: number[] = [];
  try {
    fixture = await startBenchFixture({ tmpDir: tmp, tokenExchange: false });
    const { identity, projectDir: project, key } = fixture;
    children.push(fixture.upstream.child);
    const headers = { authorization: `Bearer ${identity.token}`, "mcp-protocol-version": "2025-11-25" };
    for (let i = 0; i < REPS; i++) {
      const tg = await startTollgate(project, { TOLLGATE_ENCRYPTION_KEY: key }, [INSPECT]);
      children.push(tg.child);
      const url = `http://127.0.0.1:${tg.port}/mcp`;
      // As in the full run: the gateway has served some requests before the streams open.
      await openLoop(toolsCallSpec(url, identity.token), { rate: 500, count: 500, warmup: 0, connections: 32 });
      const r = await measureSse(url, headers, processTree(tg.child.pid), tg.child, SSE_STREAMS);
      results.push(r.kib);
      log(`run ${i + 1}: ${r.open}/${SSE_STREAMS} idle SSE streams: ${r.kib.toFixed(1)} KiB RSS each${r.failed ? `, ${r.failed} failed` : ""}`);
      await tg.child.stop();
    }
    const sorted = [...results].sort((a, b) => a - b);
    log(`median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} KiB per stream (${sorted.map((k) => k.toFixed(1)).join(", ")})`);
  } finally {
    for (const c of children) await c.stop();
    await fixture?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
