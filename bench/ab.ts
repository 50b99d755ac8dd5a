/**
 * `npm run bench:ab -- [ref] [--rounds N] [--node BIN]`: the gateway of this working tree against the gateway
 * of another commit (default `HEAD`), side by side behind one upstream, with the bare Node proxy
 * as the yardstick. Every round visits the three in a rotating order: 1,000 requests at 500/s
 * (after 100 warm-up requests) and 2 s flat out, recording the CPU time each process spent.
 *
 * This is how changes to the hot path are judged: single runs on a small machine vary by more
 * than most changes are worth, but the same noise hits both gateways when they alternate, so
 * the per-round differences (reported as their median) are what to read.
 *
 * The other commit is checked out into a temporary git worktree that borrows this checkout's
 * node_modules, so both sides run the same dependencies.
 *
 * `--node BIN` runs the three proxies on another Node binary (another release line, say); the
 * gateways then use the `memory:` store (their default here too), whose code is all JavaScript.
 * The upstream and the load generators stay on this Node.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { closedLoop, openLoop, throughputTool, toolsCallSpec, TOOLS_CALL_BODY, type RequestSpec } from "./load.js";
import { cpuMicros, processTree } from "./proc.js";
import { quantile } from "./report.js";
import { checkoutWorktree, repoRoot, startBareProxy, startBenchFixture, startTollgate, type BenchFixture, type Child } from "./targets.js";

const args = process.argv.slice(2);
/** Options followed by a value (the ref is the one argument that is neither). */
const VALUE_OPTIONS = new Set(["--rounds", "--env", "--root", "--warm", "--node"]);
/** The value after the `name` option, if given. */
const option = (name: string): string | undefined => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const ROUNDS = Number(option("--rounds") ?? 8);
const ref = args.find((a, i) => !a.startsWith("--") && !VALUE_OPTIONS.has(args[i - 1] ?? "")) ?? "HEAD";
/** `--root DIR`: run the first gateway from DIR instead of this working tree (a build of it, say). */
const ROOT = option("--root");
const MINE_ROOT = ROOT !== undefined ? path.resolve(ROOT) : repoRoot;
/**
 * `--restart`: fresh proxy processes for every round. One process can run persistently faster or
 * slower than an identical one for its whole life (JIT and heap layout); single-process pairs
 * were seen to differ by up to ±60 µs flat out with the same build. Restarting per round turns
 * that bias into noise the median absorbs.
 */
const RESTART = args.includes("--restart");
/** `--pin`: each proxy on the second core, the load generator and upstream on the first. */
const PIN = args.includes("--pin");
/**
 * `--warm SECONDS`: flat-out warm-up of each freshly started proxy before it is measured (default
 * 10). A fresh gateway is still getting cheaper per request after 3 s of full load; after about
 * 8–10 s it is steady (docs/performance.md, "Warm-up").
 */
const WARM_SECONDS = Number(option("--warm") ?? 10);
/** `--env K=V` (repeatable): extra environment for the working tree's gateway only. */
/** `--node BIN`: the Node binary of the three proxies (default: this one). */
const NODE_BIN = path.resolve(option("--node") ?? process.execPath);
const MINE_ENV = Object.fromEntries(args.flatMap((a, i) => (args[i - 1] === "--env" ? [a.split(/=(.*)/s).slice(0, 2)] : [])));
const RATE = 500;
const COUNT = 1000;
const WARMUP = 100;
const FLAT_SECONDS = 2;

const log = (msg: string) => process.stdout.write(`${msg}\n`);

interface Side {
  name: string;
  child: Child;
  url: string;
  rate: number[];
  flat: number[];
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-ab-"));
  const other = path.join(tmp, "other");
  const removeOther = checkoutWorktree(ref, other);
  const children: Child[] = [];
  let fixture: BenchFixture | undefined;
  try {
    const tool = await throughputTool();
    fixture = await startBenchFixture({ tmpDir: tmp, tokenExchange: false });
    const { identity, upstream, projectDir: project, key } = fixture;
    children.push(upstream.child);
    const names = ["bare node", `gateway @ ${ref}`, "gateway (working tree)"];
    const sides: Side[] = names.map((name) => ({ name, child: undefined as unknown as Child, url: "", rate: [], flat: [] }));
    const spec = (s: Side): RequestSpec => toolsCallSpec(s.url, identity.token);
    /** Starts the three proxies (stopping earlier ones), checks each answers, and warms them up. */
    const start = async () => {
      for (const s of sides) if (s.child) await s.child.stop();
      const started = [
        await startBareProxy(upstream.port, [], NODE_BIN),
        await startTollgate(project, { TOLLGATE_ENCRYPTION_KEY: key }, [], other, [], NODE_BIN),
        await startTollgate(project, { TOLLGATE_ENCRYPTION_KEY: key, ...MINE_ENV }, [], MINE_ROOT, [], NODE_BIN),
      ];
      started.forEach((t, i) => {
        sides[i]!.child = t.child;
        sides[i]!.url = `http://127.0.0.1:${t.port}/mcp`;
        children.push(t.child);
      });
      if (PIN) {
        pin(0, [process.pid, ...processTree(upstream.child.pid)]);
        for (const s of sides) pin(1, processTree(s.child.pid));
      }
      for (const s of sides) {
        const res = await fetch(s.url, { method: "POST", headers: spec(s).headers, body: TOOLS_CALL_BODY });
        const text = await res.text();
        if (res.status !== 200 || !text.includes('"hello"')) throw new Error(`${s.name}: unexpected answer ${res.status} ${text.slice(0, 200)}`);
        // Long enough for the JIT to settle: a fresh process is dearer per request for several seconds.
        await closedLoop(tool, spec(s), { connections: 32, seconds: WARM_SECONDS, tmpDir: tmp });
      }
    };
    if (NODE_BIN !== process.execPath) log(`All three proxies on ${NODE_BIN}`);
    await start();
    for (let round = 0; round < ROUNDS; round++) {
      if (RESTART && round > 0) await start();
      const order = sides.map((_, i) => sides[(i + round) % sides.length]!);
      const line: string[] = [];
      for (const s of order) {
        const pids = processTree(s.child.pid);
        let c0 = cpuMicros(pids);
        const r = await openLoop(spec(s), { rate: RATE, count: COUNT, warmup: WARMUP, connections: 32 });
        if (r.errors + r.statusErrors > 0) throw new Error(`${s.name}: ${r.errors + r.statusErrors} failed requests`);
        s.rate.push((cpuMicros(pids) - c0) / (COUNT + WARMUP));
        c0 = cpuMicros(pids);
        const f = await closedLoop(tool, spec(s), { connections: 32, seconds: FLAT_SECONDS, tmpDir: tmp });
        s.flat.push((cpuMicros(pids) - c0) / f.requests);
        line.push(`${s.name} ${s.rate.at(-1)!.toFixed(0)}/${s.flat.at(-1)!.toFixed(0)}`);
      }
      log(`round ${round + 1}/${ROUNDS} (µs/req at ${RATE}/s / flat out): ${line.join(", ")}`);
    }
    const med = (xs: number[]) => quantile(xs, 0.5)!;
    log(`\nCPU µs per request, median of ${ROUNDS} rounds (range):`);
    for (const s of sides) {
      log(`  ${s.name.padEnd(26)} at ${RATE}/s ${med(s.rate).toFixed(0)} (${Math.min(...s.rate).toFixed(0)}–${Math.max(...s.rate).toFixed(0)})   flat out ${med(s.flat).toFixed(1)}`);
    }
    const [, old, cur] = sides as [Side, Side, Side];
    const dRate = cur.rate.map((v, i) => v - old.rate[i]!);
    const dFlat = cur.flat.map((v, i) => v - old.flat[i]!);
    log(`  working tree minus ${ref}, median of the per-round differences: at ${RATE}/s ${med(dRate).toFixed(0)} µs, flat out ${med(dFlat).toFixed(1)} µs`);
  } finally {
    for (const c of children) await c.stop();
    await fixture?.stop();
    removeOther();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Binds every thread of the processes to one CPU (`taskset`), when there are at least two. */
function pin(cpu: number, pids: number[]): void {
  if (os.availableParallelism() < 2) return;
  for (const pid of pids) execFileSync("taskset", ["-a", "-pc", String(cpu), String(pid)], { stdio: "ignore" });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
