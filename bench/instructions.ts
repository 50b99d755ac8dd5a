/**
 * `npm run bench:instr -- [ref] [--rounds N] [--node BIN] [--requests N] [--warm N]`: machine
 * instructions per `tools/call`, counted by Valgrind's callgrind in every thread of the proxy's
 * process, for the bare Node proxy, the gateway of this working tree (default configuration,
 * access log and audit trail on) and, given a `ref`, the gateway of that commit.
 *
 * CPU time on a shared host moves with everything else that host runs: on a noisy one, single
 * `--ratio-only` pairs were seen from 0.77 to 2.18. An instruction count moves far less (runs of
 * one build mostly agree within 1 %), so it is the measure for judging a change to the hot path
 * while the host is noisy (docs/performance.md, "4 December 2026, late evening"); it is not
 * immune, since how requests arrive per turn of the event loop changes what each one costs.
 * What it leaves out is what happens in
 * the kernel (socket reads and writes, the same for every proxy) and what an instruction costs
 * (cache misses, stalls): the CPU-time ratio of `npm run bench` stays the figure of record.
 *
 * Each proxy runs under `valgrind --tool=callgrind` with counting off; a client in this process
 * (8 keep-alive connections) sends `--warm` requests (default 12,000, enough for V8 to have
 * compiled the hot path under Valgrind's slower clock), then counting is switched on
 * (`callgrind_control -i on`) for `--requests` more (default 3,000) and off again. Rounds
 * rotate the order of the proxies; each round starts every proxy afresh. About one count in
 * five reads 5 % or more off the others of its build (bare Node 306k against 232–237k; a gateway
 * 307k against 321–325k in a round with tests running on the other core): run it on an otherwise
 * idle host, read the median of three rounds or more, and a difference smaller than that only
 * when it holds in every round. A run takes about a minute per proxy and round.
 *
 * Needs `valgrind` (Debian: `valgrind`). `--node BIN` runs the proxies on another Node binary
 * with the `memory:` store (their default here too); the upstream stays on this one.
 *
 * `--top N` also lists, for every count, the N functions that ran the most instructions of
 * their own per request, V8's compiled functions named from its map of compiled code (Node's
 * `--perf-basic-prof`, which the proxies then run with: counts taken with `--top` are not
 * compared with counts taken without). An optimized function's own count includes what it
 * inlined.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { toolsCallSpec } from "./load.js";
import { quantile } from "./report.js";
import { checkoutWorktree, freePort, GATEWAY_NODE_FLAGS, repoRoot, startBenchFixture, type BenchFixture } from "./targets.js";

const args = process.argv.slice(2);
const VALUE_OPTIONS = new Set(["--rounds", "--node", "--requests", "--warm", "--top"]);
const option = (name: string): string | undefined => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const ref = args.find((a, i) => !a.startsWith("--") && !VALUE_OPTIONS.has(args[i - 1] ?? ""));
const ROUNDS = Number(option("--rounds") ?? 3);
const NODE_BIN = path.resolve(option("--node") ?? process.execPath);
const REQUESTS = Number(option("--requests") ?? 3000);
const WARM = Number(option("--warm") ?? 12000);
const TOP = Number(option("--top") ?? 0);
/** Node's options for a proxy: a map of its compiled code when functions are listed. */
const PROFILE_FLAGS = TOP > 0 ? ["--perf-basic-prof"] : [];
const CONNECTIONS = 8;
/** Longest a proxy may take to start under Valgrind. */
const START_MS = 300_000;

interface Target {
  name: string;
  /** The command run under Valgrind, given the fixture and a free port. */
  command(f: BenchFixture, port: number): string[];
  counts: number[];
}

const gateway = (name: string, root: string): Target => ({
  name,
  command: (f, port) => [NODE_BIN, ...PROFILE_FLAGS, ...GATEWAY_NODE_FLAGS, path.join(root, "bin", "tollgate.js"), "start", "--project", f.projectDir, "--port", String(port), "--host", "127.0.0.1"],
  counts: [],
});

/**
 * Sends `n` tool calls over {@link CONNECTIONS} keep-alive connections of `agent`; rejects on any
 * failure. The warm-up and the counted requests share the agent: the counted ones then open no
 * connection.
 */
async function send(agent: http.Agent, url: string, token: string, n: number): Promise<void> {
  const spec = toolsCallSpec(url, token);
  const u = new URL(url);
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        { host: u.hostname, port: u.port, path: u.pathname, method: "POST", headers: { ...spec.headers, "content-length": Buffer.byteLength(spec.body!) }, agent },
        (res) => {
          res.resume();
          res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
        },
      );
      req.on("error", reject);
      req.end(spec.body);
    });
  let left = n;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (left-- > 0) await one();
    }),
  );
}

/** Waits until `check` returns a value, reading the process's output; throws if it exits first. */
async function waitFor<T>(proc: ChildProcess, out: string, check: (text: string) => T | undefined): Promise<T> {
  const deadline = Date.now() + START_MS;
  for (;;) {
    const text = fs.readFileSync(out, "utf8");
    const found = check(text);
    if (found !== undefined) return found;
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`did not start:\n${text.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** One measurement: instructions per request of one proxy, started afresh. */
async function measure(t: Target, f: BenchFixture, tmp: string): Promise<number> {
  const port = await freePort();
  const out = path.join(tmp, "out.log");
  const counts = path.join(tmp, "callgrind.out");
  const fd = fs.openSync(out, "w");
  const proc = spawn(
    "valgrind",
    ["--tool=callgrind", "--instr-atstart=no", "--smc-check=all-non-file", `--callgrind-out-file=${counts}`, "--dump-line=no", ...t.command(f, port)],
    { cwd: repoRoot, stdio: ["ignore", fd, fd], env: { ...process.env, TOLLGATE_STORE: "memory:", TOLLGATE_ENCRYPTION_KEY: f.key } },
  );
  fs.closeSync(fd);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  try {
    // The bare proxy prints its port; the gateway says it is serving.
    const url = await waitFor(proc, out, (text) => {
      const bare = /\{"port":(\d+)\}/.exec(text);
      if (bare) return `http://127.0.0.1:${bare[1]}/mcp`;
      return text.includes("Tollgate serving") ? `http://127.0.0.1:${port}/mcp` : undefined;
    });
    await send(agent, url, f.identity.token, WARM);
    const pid = String(proc.pid);
    execFileSync("callgrind_control", ["-i", "on", pid], { stdio: "ignore" });
    await send(agent, url, f.identity.token, REQUESTS);
    execFileSync("callgrind_control", ["-i", "off", pid], { stdio: "ignore" });
    execFileSync("callgrind_control", ["-d", pid], { stdio: "ignore" });
    // The dump is written to `<file>.<n>`: the sum of its threads' totals.
    const dumps = () => fs.readdirSync(tmp).filter((n) => n.startsWith("callgrind.out."));
    const total = await waitFor(proc, out, () => {
      const sums = dumps().map((n) => [...fs.readFileSync(path.join(tmp, n), "utf8").matchAll(/^totals: (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0));
      return sums.length > 0 && sums.every((s) => s > 0) ? sums.reduce((a, b) => a + b, 0) : undefined;
    });
    if (TOP > 0) printTop(t.name, dumps().map((n) => path.join(tmp, n)), `/tmp/perf-${pid}.map`);
    return total / REQUESTS;
  } finally {
    agent.destroy();
    proc.kill("SIGKILL");
    for (const n of fs.readdirSync(tmp)) if (n.startsWith("callgrind.out")) fs.rmSync(path.join(tmp, n), { force: true });
    if (proc.pid !== undefined) fs.rmSync(`/tmp/perf-${proc.pid}.map`, { force: true });
  }
}

/**
 * Prints the {@link TOP} functions with the most instructions of their own per request, from
 * callgrind's dumps (names compressed as `fn=(id) name` on first use) and V8's map of compiled
 * code (`start size name` per line; an address reused by later code takes the later name).
 */
function printTop(name: string, files: string[], mapFile: string): void {
  const code: Array<[number, number, string]> = [];
  if (fs.existsSync(mapFile)) {
    for (const line of fs.readFileSync(mapFile, "utf8").split("\n")) {
      const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
      if (m) code.push([parseInt(m[1]!, 16), parseInt(m[2]!, 16), m[3]!]);
    }
  }
  const named = (fn: string): string => {
    const hex = /^0x([0-9a-f]+)$/.exec(fn);
    if (!hex) return fn;
    const at = parseInt(hex[1]!, 16);
    for (let i = code.length - 1; i >= 0; i--) if (at >= code[i]![0] && at < code[i]![0] + code[i]![1]) return code[i]![2];
    return fn;
  };
  const self = new Map<string, number>();
  for (const file of files) {
    const names = new Map<string, string>();
    let fn = "?";
    let inclusive = false;
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      const def = /^c?fn=\((\d+)\)(?: (.*))?$/.exec(line);
      if (def) {
        if (def[2] !== undefined) names.set(def[1]!, def[2]);
        if (line.startsWith("fn=")) fn = named(names.get(def[1]!) ?? `fn ${def[1]}`);
        continue;
      }
      if (line.startsWith("calls=")) inclusive = true;
      else if (/^[0-9+*-]/.test(line)) {
        // The line after `calls=` is the call's cost, the callee's included: not this function's own.
        if (!inclusive) self.set(fn, (self.get(fn) ?? 0) + Number(line.trim().split(/\s+/)[1] ?? 0));
        inclusive = false;
      }
    }
  }
  console.log(`  ${name}: the ${TOP} functions with the most instructions of their own, per request`);
  for (const [fn, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`    ${String(Math.round(n / REQUESTS)).padStart(7)}  ${fn.slice(0, 140)}`);
}

async function main(): Promise<void> {
  try {
    execFileSync("valgrind", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("bench:instr needs Valgrind (Debian: apt-get install valgrind)");
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-instr-"));
  const other = path.join(tmp, "other");
  const targets: Target[] = [
    {
      name: "bare node",
      command: (f) => [NODE_BIN, ...PROFILE_FLAGS, "--import", "tsx", path.join(repoRoot, "bench", "bare-proxy.ts"), `http://127.0.0.1:${f.upstream.port}`, "1"],
      counts: [],
    },
    gateway("gateway (working tree)", repoRoot),
  ];
  const removeOther = ref !== undefined ? checkoutWorktree(ref, other) : undefined;
  if (ref !== undefined) targets.push(gateway(`gateway @ ${ref}`, other));
  let fixture: BenchFixture | undefined;
  try {
    fixture = await startBenchFixture({ tmpDir: tmp, tokenExchange: false });
    console.log(`${execFileSync(NODE_BIN, ["--version"], { encoding: "utf8" }).trim()}; ${WARM} requests to warm up, ${REQUESTS} counted, ${ROUNDS} round(s)`);
    for (let round = 0; round < ROUNDS; round++) {
      const line: string[] = [];
      for (let i = 0; i < targets.length; i++) {
        const t = targets[(i + round) % targets.length]!;
        t.counts.push(await measure(t, fixture, tmp));
        line.push(`${t.name} ${(t.counts.at(-1)! / 1000).toFixed(1)}k`);
      }
      console.log(`round ${round + 1}/${ROUNDS}: ${line.join(", ")}`);
    }
    const med = (xs: number[]) => quantile(xs, 0.5)!;
    const bare = med(targets[0]!.counts);
    console.log("\nthousand instructions per request, median of rounds (all rounds), and over bare Node:");
    for (const t of targets) {
      const m = med(t.counts);
      console.log(`  ${t.name.padEnd(28)} ${(m / 1000).toFixed(1)}k (${t.counts.map((c) => (c / 1000).toFixed(1)).join(", ")})  ${(m / bare).toFixed(3)}×`);
    }
  } finally {
    await fixture?.stop();
    removeOther?.();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
