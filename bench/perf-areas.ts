/**
 * `npm run bench:perf -- [--against bare|audit-off] [--node BIN] [--rounds N] [--seconds S] [--top N] [--area NAME]`: where the CPU time of
 * a flat-out `tools/call` goes, in the gateway (default configuration) and in the bare Node proxy,
 * in µs per request, sampled with Linux `perf` over every thread of each process.
 *
 * A JavaScript profile (`npm run bench -- --profile-only`) sees the main thread's JavaScript and
 * little else. This one also shows what that JavaScript makes the rest do: the kernel (system
 * calls, loopback TCP), V8's runtime and garbage collector (on their own threads too), its
 * builtins (property lookups, promises, string building), Node's native code (the HTTP parser,
 * libuv). JavaScript is split by where it comes from: the gateway's `src/`, Node's core, each
 * package. The two proxies are loaded in alternation, flat out, after a warm-up, so a drifting
 * host moves both alike; the table reads best as a difference and a ratio, not as absolute µs.
 *
 * `--against audit-off` compares the gateway with another gateway of the same build whose audit
 * trail and MCP metrics are off (`TOLLGATE_AUDIT=off`) instead of with bare Node: where the audit
 * trail's cost goes.
 *
 * `--node BIN` runs both proxies on another Node binary (another release line, say) with the
 * `memory:` store, whose code is all JavaScript; the upstream stays on this one. Needs `perf`
 * (Debian: `linux-perf`) allowed to sample kernel and user time of the user's own processes
 * (root, or `kernel.perf_event_paranoid` at 1 or below), and `wrk`.
 */
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { closedLoop, throughputTool, toolsCallSpec } from "./load.js";
import { cpuMicros, processTree } from "./proc.js";
import { repoRoot, startBareProxy, startBenchFixture, startTollgate, type Child } from "./targets.js";

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const NODE = path.resolve(option("--node") ?? process.execPath);
const ROUNDS = Number(option("--rounds") ?? 3);
const SECONDS = Number(option("--seconds") ?? 4);
const WARM_SECONDS = 10;
const TOP = Number(option("--top") ?? 25);
const AGAINST = option("--against") ?? "bare";
/** `--area NAME`: also list that area's dearest symbols on each side (an area's name as the table prints it). */
const AREA = option("--area");
if (AGAINST !== "bare" && AGAINST !== "audit-off") throw new Error(`--against: "bare" or "audit-off", not "${AGAINST}"`);
/** What the gateway is compared with, as the tables name it. */
const BASE = AGAINST === "bare" ? "bare" : "no audit";
const CONNECTIONS = 32;
/** CPU time per sample (a fixed period of the software clock: no frequency to estimate). */
const PERIOD_NS = 250_000;

/** One `perf report` row: samples, shared object and symbol. */
interface Row {
  samples: number;
  dso: string;
  sym: string;
}

/** Where a sample's time belongs (see the file comment). */
export function areaOf(dso: string, sym: string, nodeName: string): string {
  if (dso === "[kernel.kallsyms]") return "kernel";
  if (dso.startsWith("[JIT]")) {
    const m = /^JS:[*+^~]?'?\S* (\S+)/.exec(sym);
    if (!m) return "JIT code: other (regexps, stubs)";
    const at = m[1]!;
    if (at.startsWith("node:")) return "JavaScript: Node core";
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(at)?.[1];
    if (pkg) return `JavaScript: ${pkg}`;
    if (at.includes("/src/")) return "JavaScript: gateway (src/)";
    if (at.includes("/bench/")) return "JavaScript: bare proxy (bench/)";
    return "JavaScript: other";
  }
  if (dso === nodeName) {
    if (sym.startsWith("Builtins_")) return "V8 builtins";
    if (/Scaveng|MarkCompact|Marking|Sweep|Evacuat|MinorMS|Heap::|GCTracer|ArrayBufferSweeper/.test(sym)) return "V8 garbage collection";
    if (sym.includes("v8::")) return "V8 runtime";
    return "Node native (llhttp, libuv, streams)";
  }
  if (dso.startsWith("libc.")) return "libc";
  return `other: ${dso}`;
}

/** Parses `perf report --stdio --sort dso,sym -F sample,dso,sym`. */
export function parseReport(text: string): Row[] {
  const rows: Row[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*(\d+)\s+(\[JIT\] tid \d+|\S+)\s+\[.\]\s+(.*?)\s*$/.exec(line);
    if (m) rows.push({ samples: Number(m[1]), dso: m[2]!, sym: m[3]! });
  }
  return rows;
}

/**
 * Rewrites a `/tmp/perf-<pid>.map` so that no two entries overlap, the later one winning. V8
 * appends an entry whenever it places code and never retracts one, so the addresses of code it
 * has since thrown away (startup code, deoptimized versions) are listed again for the code that
 * reused them; `perf` would then charge a sample to whichever entry it meets first — seen here
 * charging several µs per request to the TypeScript loader's start-up parser. The newest entry is
 * the code that ran last, which is what a process sampled late in its life was running.
 */
export function latestOnly(map: string): string {
  const entries: { start: number; end: number; line: string }[] = [];
  for (const line of map.split("\n")) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) /.exec(line);
    if (m) entries.push({ start: parseInt(m[1]!, 16), end: parseInt(m[1]!, 16) + parseInt(m[2]!, 16), line });
  }
  // Newest first; keep an entry only where no newer one has claimed any of its range.
  const kept: typeof entries = [];
  const starts: number[] = []; // sorted starts of `kept` (kept in the same order)
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! < e.end) lo = mid + 1;
      else hi = mid;
    }
    // `lo` is the first kept entry starting at or after e.end; the one before it may overlap.
    if (lo > 0 && kept[lo - 1]!.end > e.start) continue;
    kept.splice(lo, 0, e);
    starts.splice(lo, 0, e.start);
  }
  return kept.map((e) => `${e.line}\n`).join("");
}

/** Checks that `perf` can sample a process of ours; the reason when not. */
function perfProblem(): string | undefined {
  try {
    execFileSync("perf", ["record", "-e", "cpu-clock", "-c", String(PERIOD_NS), "-o", "/dev/null", "--", "true"], { stdio: "pipe" });
    return undefined;
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer };
    return e.code === "ENOENT" ? "perf is not installed (Debian: apt-get install linux-perf)" : `perf cannot sample here: ${String(e.stderr ?? err).trim().split("\n")[0]}`;
  }
}

interface Target {
  child: Child;
  url: string;
  /** Its `perf record` files, one per round. */
  files: string[];
  requests: number;
  /** CPU time `/proc` gives for the sampled windows. */
  cpuUs: number;
  /** µs per request by area, and by symbol (area-prefixed). */
  areas: Map<string, number>;
  symbols: Map<string, number>;
  /** µs per request by symbol, within `--area` only. */
  inArea: Map<string, number>;
}

const target = (child: Child, port: number): Target => ({
  child,
  url: `http://127.0.0.1:${port}/mcp`,
  files: [],
  requests: 0,
  cpuUs: 0,
  areas: new Map(),
  symbols: new Map(),
  inArea: new Map(),
});

const add = (m: Map<string, number>, key: string, v: number) => m.set(key, (m.get(key) ?? 0) + v);
const sum = (m: Map<string, number>) => [...m.values()].reduce((a, v) => a + v, 0);
const fmt = (v: number) => v.toFixed(1).padStart(8);
const signed = (v: number, digits: number) => (v >= 0 ? "+" : "") + v.toFixed(digits);

async function main(): Promise<void> {
  const problem = perfProblem();
  if (problem) {
    console.error(`bench:perf: ${problem}`);
    process.exit(2);
  }
  if ((await throughputTool()) !== "wrk") {
    console.error("bench:perf: needs wrk (Debian: apt-get install wrk)");
    process.exit(2);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-perf-"));
  const fx = await startBenchFixture({ tmpDir: tmp, tokenExchange: false });
  const targets: Target[] = [];
  try {
    // JIT code gets names (`/tmp/perf-<pid>.map`); both sides pay the same for writing them.
    const flags = ["--perf-basic-prof"];
    const baseline =
      AGAINST === "bare"
        ? await startBareProxy(fx.upstream.port, flags, NODE)
        : await startTollgate(fx.projectDir, { TOLLGATE_ENCRYPTION_KEY: fx.key, TOLLGATE_AUDIT: "off" }, flags, repoRoot, [], NODE);
    const base = target(baseline.child, baseline.port);
    targets.push(base);
    const gateway = await startTollgate(fx.projectDir, { TOLLGATE_ENCRYPTION_KEY: fx.key }, flags, repoRoot, [], NODE);
    const gw = target(gateway.child, gateway.port);
    targets.push(gw);
    const version = execFileSync(NODE, ["--version"], { encoding: "utf8" }).trim();
    console.log(`Node ${version}; ${WARM_SECONDS} s warm-up each, then ${ROUNDS} alternating rounds of ${SECONDS} s flat out (${CONNECTIONS} connections).`);
    for (const t of targets) await closedLoop("wrk", toolsCallSpec(t.url, fx.identity.token), { connections: CONNECTIONS, seconds: WARM_SECONDS, tmpDir: tmp });
    for (let round = 0; round < ROUNDS; round++) {
      for (const t of targets) {
        const file = path.join(tmp, `${t.child.pid}.${round}.data`);
        const pids = processTree(t.child.pid);
        const rec = spawn("perf", ["record", "-e", "cpu-clock", "-c", String(PERIOD_NS), "-p", String(t.child.pid), "-o", file, "--", "sleep", String(SECONDS + 0.2)], { stdio: "ignore" });
        await new Promise((r) => setTimeout(r, 100));
        const cpu0 = cpuMicros(pids);
        const load = await closedLoop("wrk", toolsCallSpec(t.url, fx.identity.token), { connections: CONNECTIONS, seconds: SECONDS, tmpDir: tmp });
        t.cpuUs += cpuMicros(pids) - cpu0;
        await once(rec, "exit");
        if (load.failures > 0) throw new Error(`${t === gw ? "Tollgate" : BASE}: ${load.failures} failed requests`);
        t.requests += load.requests;
        t.files.push(file);
      }
    }
    const nodeName = path.basename(fs.realpathSync(NODE));
    for (const t of targets) {
      // Stopped first: its perf map is complete, and rewritten before `perf report` reads it.
      await t.child.stop();
      const map = `/tmp/perf-${t.child.pid}.map`;
      if (fs.existsSync(map)) fs.writeFileSync(map, latestOnly(fs.readFileSync(map, "utf8")));
      for (const file of t.files) {
        const text = execFileSync("perf", ["report", "-i", file, "--stdio", "--sort", "dso,sym", "-F", "sample,dso,sym"], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, stdio: ["ignore", "pipe", "ignore"] });
        for (const row of parseReport(text)) {
          const us = (row.samples * PERIOD_NS) / 1000 / t.requests;
          const area = areaOf(row.dso, row.sym, nodeName);
          add(t.areas, area, us);
          // JIT names carry the compiler tier and, for tsx output, the column: keep function and file.
          const sym = row.dso.startsWith("[JIT]") ? row.sym.replace(/^JS:[*+^~]?'?/, "").replace(/file:\/\/|:\d+:\d+$/g, "").replace(`${repoRoot}/`, "") : row.sym;
          add(t.symbols, `${area.startsWith("JavaScript") ? "JS" : area.split(" ")[0]} ${sym}`, us);
          if (area === AREA) add(t.inArea, sym, us);
        }
      }
    }
    console.log(`\nµs of CPU per request, by area (all threads):\n${"area".padEnd(40)}${BASE.padStart(8)}${"Tollgate".padStart(10)}${"diff".padStart(8)}`);
    const names = [...new Set([...base.areas.keys(), ...gw.areas.keys()])].sort((x, y) => (gw.areas.get(y) ?? 0) - (gw.areas.get(x) ?? 0));
    for (const n of names) {
      const [x, y] = [base.areas.get(n) ?? 0, gw.areas.get(n) ?? 0];
      if (x < 0.05 && y < 0.05) continue;
      console.log(`${n.slice(0, 39).padEnd(40)}${fmt(x)}  ${fmt(y)}${signed(y - x, 1).padStart(7)}`);
    }
    const totals = (label: string, x: number, y: number) => console.log(`${label.padEnd(40)}${fmt(x)}  ${fmt(y)}  ratio ${(y / x).toFixed(2)}×`);
    totals("total (sampled)", sum(base.areas), sum(gw.areas));
    totals("total (/proc, same windows)", base.cpuUs / base.requests, gw.cpuUs / gw.requests);
    console.log(`requests sampled: ${BASE} ${base.requests}, Tollgate ${gw.requests}`);
    console.log(`\nThe ${TOP} symbols with the largest difference (Tollgate − ${BASE}), µs per request:`);
    const diff = (k: string) => (gw.symbols.get(k) ?? 0) - (base.symbols.get(k) ?? 0);
    const keys = [...new Set([...base.symbols.keys(), ...gw.symbols.keys()])].sort((x, y) => Math.abs(diff(y)) - Math.abs(diff(x)));
    for (const k of keys.slice(0, TOP)) {
      console.log(`${fmt(base.symbols.get(k) ?? 0)}  ${fmt(gw.symbols.get(k) ?? 0)}  ${signed(diff(k), 2)}  ${k.slice(0, 110)}`);
    }
    if (AREA) {
      for (const t of targets) {
        console.log(`\nThe ${TOP} dearest symbols of "${AREA}" in ${t === gw ? "Tollgate" : BASE}, µs per request:`);
        for (const [k, us] of [...t.inArea].sort((x, y) => y[1] - x[1]).slice(0, TOP)) console.log(`${fmt(us)}  ${k.slice(0, 120)}`);
      }
    }
  } finally {
    for (const t of targets) {
      await t.child.stop();
      fs.rmSync(`/tmp/perf-${t.child.pid}.map`, { force: true });
    }
    await fx.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
