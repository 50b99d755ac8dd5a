/**
 * `npm run bench`: MCP `tools/call` through Tollgate, compared with the same calls straight to
 * the upstream, through nginx and through a bare Node proxy, all measured in one run and
 * interleaved (every round visits every target, in a rotating order) so machine noise hits all
 * of them alike. Method and results: docs/performance.md; the last run: bench/results.md.
 *
 *   npm run bench                     # full run, about fourteen minutes
 *   npm run bench -- --profile        # always profile the gateway (else only when a target is missed)
 *   npm run bench -- --no-profile     # never profile
 *   npm run bench -- --quick          # one short round, to check the harness (results.md untouched)
 *   npm run bench -- --profile-only   # only the profile, for working on hot spots
 *   npm run bench -- --profile-only --tx   # the same, on the token-exchange route
 *   npm run bench -- --profile-only --bare # the same, on the route without policies
 *   npm run bench -- --profile-only --flat # the same, flat out instead of at the fixed rate
 *   npm run bench -- --audit-only     # only what the audit trail costs (one process, both configurations)
 *   npm run bench -- --ratio-only     # only the flat-out ratio to bare Node (alternating pairs)
 *   npm run bench -- --ratio-only --workers  # the same for --workers 2, against bare Node in 1 and 2 processes
 *   npm run bench -- --ratio-only --rate     # the ratio at 500/s instead (alternating pairs; with or without --workers)
 *   npm run bench -- --ratio-only --node BIN # the gateway and bare Node on another Node binary
 *                                            # (another release line; also with --audit-only, not with --workers)
 *   npm run bench -- --node BIN              # everything, plus the ratio rows on that Node binary
 *
 * Needs Linux (`/proc` for CPU time and RSS). nginx and wrk come from the OS packages
 * (`apt-get install -y nginx wrk`); without them the nginx column is skipped and autocannon
 * replaces wrk. The benchmark installs nothing itself. Not a test: it asserts nothing.
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { closedLoop, openLoop, throughputTool, toolsCallSpec, TOOLS_CALL_BODY, type RequestSpec } from "./load.js";
import { cpuMicros, haveProc, processTree } from "./proc.js";
import { newestProfile, renderProfile, summarise } from "./profile.js";
import { TX_UPSTREAM_ID } from "./project.js";
import { quantile, renderReport, type Goals, type OtherLine, type TargetResult } from "./report.js";
import { seedGrant, tokenExchangeAvailable } from "./seed-grant.js";
import { measureSse } from "./sse.js";
import { findNginx, INSPECT, repoRoot, startAuditPair, startBareProxy, startBenchFixture, startNginx, startTollgate, type BenchFixture, type Child } from "./targets.js";

const argv = new Set(process.argv.slice(2));
const QUICK = argv.has("--quick");
const PROFILE_ONLY = argv.has("--profile-only");
const PROFILE_TX = argv.has("--tx");
const PROFILE_BARE = argv.has("--bare");
/** Profile flat out (closed loop) instead of at the fixed rate. */
const PROFILE_FLAT = argv.has("--flat");
const AUDIT_ONLY = argv.has("--audit-only");
const RATIO_ONLY = argv.has("--ratio-only");
/** With --ratio-only: the two-worker gateway's ratios instead of the single process's. */
const RATIO_WORKERS = argv.has("--workers");
/** With --ratio-only: the pairs at the fixed rate instead of flat out. */
const RATIO_RATE = argv.has("--rate");
/**
 * Another Node binary (another release line, say) for the gateway and bare Node proxy of the ratio
 * pairs: with --ratio-only or --audit-only they run only there; in a full run the pairs are
 * measured there as well and reported in rows of their own. The load generator and the upstream
 * stay on this Node. The gateway then uses the `memory:` store, whose code is all JavaScript: no
 * native module has to be built for that binary.
 */
const NODE_BIN = ((at) => (at >= 0 ? path.resolve(process.argv[at + 1] ?? "") : undefined))(process.argv.indexOf("--node"));
const PROFILE = argv.has("--profile") || PROFILE_ONLY;
const NO_PROFILE = argv.has("--no-profile");
const ROUNDS = QUICK ? 1 : 5;
const CONNECTIONS = 32;
const MAX_SECONDS = QUICK ? 2 : 3;
const RATE = 500;
const RATE_COUNT = QUICK ? 1000 : 1500; // per round and target: 3 s at 500/s
const RATE_WARMUP = 100;
const TX_PAIRS = QUICK ? 1 : 8;
const TX_PAIR_COUNT = 800;
/** Pairs of the audit pair process (audit trail on and off in one process): flat out, of this many seconds each… */
const AUDIT_FLAT_PAIRS = QUICK ? 2 : 20;
const AUDIT_FLAT_SECONDS = 1;
/**
 * …and at the fixed rate, {@link AUDIT_RATE_COUNT} requests each after the warm-up requests. At
 * 500/s a request costs several hundred µs, most of it waking up for it; a difference of 15 µs
 * needs long windows to show through that.
 */
const AUDIT_RATE_PAIRS = QUICK ? 1 : 12;
const AUDIT_RATE_COUNT = QUICK ? 800 : 1500;
/**
 * Alternating flat-out pairs of the bare Node proxy and a gateway, {@link RATIO_SECONDS} each:
 * the ratio goal's measure. The rounds give each target 3 s in turn, about half a minute apart;
 * on a host whose speed drifts (other tenants) that moves the ratio by more than the gateway's
 * own changes do. Two loads a second apart see the same host.
 */
const RATIO_PAIRS = QUICK ? 2 : 20;
const RATIO_SECONDS = 1;
/**
 * The same at the fixed rate: alternating pairs of {@link RATE_COUNT} requests at {@link RATE}/s
 * (after {@link RATE_WARMUP}, counted too). At 500/s a request costs three to four times what it
 * does flat out, most of it waking up for it, and from one round to the next (half a minute apart)
 * that cost has moved by 50% on this host; the rounds' medians, taken a minute apart for the two
 * targets, then decided the ratio more than either proxy did.
 */
const RATE_RATIO_PAIRS = QUICK ? 1 : 10;
/**
 * Flat-out warm-up of every process before anything is measured, in windows of
 * {@link WARM_WINDOW_SECONDS}. A fresh gateway needs several seconds of full load (tens of
 * thousands of requests) before V8 has optimised its request path; measured after 3 s it still
 * cost tens of µs more per request than after 10, and the more code a configuration runs (the
 * audit trail), the longer it takes. A gateway in service runs for days: the benchmark measures
 * that steady state, and reports the warm-up it left out (every window).
 */
const WARM_SECONDS = QUICK ? 2 : 10;
const WARM_WINDOW_SECONDS = 2;
const SSE_STREAMS = 1000;
const PROFILE_SECONDS = 6;
const GOALS: Goals = { cpuUs: 300, referenceBareNodeUs: 210, p50AddedMs: 0.6, p99AddedMs: 5, sseKiB: 30, txDeltaUs: 50, auditDeltaUs: 15, bareNodeRatio: 1.3 };

interface Target {
  name: string;
  label: string;
  kind: TargetResult["kind"];
  url: string;
  /** The process whose CPU and memory are charged to this target (undefined for direct). */
  child: Child | undefined;
  acc: { reqMax: number; secMax: number; cpuMax: number; failMax: number; reqRate: number; cpuRate: number; upCpu: number; lat: number[]; p99s: number[]; cpuRounds: number[]; cpuMaxRounds: number[]; failRate: number };
  sse?: { kib: number; open: number };
}

/**
 * Stops the processes of measured targets that no step still to come uses (`keep` names the
 * targets whose process stays). A Node process that served load a moment ago keeps working while
 * idle (V8 collects and shrinks its heap in the background, its timers run), and on a host whose
 * cores the load generator, the upstream and both proxies already share, that work lands in
 * whichever pair is being measured.
 */
async function stopUnused(targets: readonly Target[], keep: (t: Target) => boolean): Promise<void> {
  const kept = new Set(targets.filter(keep).map((t) => t.child));
  for (const t of targets) if (t.child && !kept.has(t.child)) await t.child.stop();
}

const log = (msg: string) => process.stdout.write(`${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Mean ± standard error of the mean, to `digits` decimals. */
function meanAndError(xs: number[], digits = 1): string {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return `${mean.toFixed(digits)} ± ${(sd / Math.sqrt(xs.length)).toFixed(digits)}`;
}

const rateRun = (spec: RequestSpec, count: number, warmup: number) => openLoop(spec, { rate: RATE, count, warmup, connections: CONNECTIONS });

function machineLines(tool: string, nginxBin: string | undefined, loadBefore: number): string[] {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  let nginxVersion = "not installed";
  if (nginxBin) {
    const r = spawnSync(nginxBin, ["-v"], { encoding: "utf8" });
    nginxVersion = `${r.stdout}${r.stderr}`.replace(/^nginx version:\s*(nginx\/)?/, "").trim() || "installed";
  }
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain"], { cwd: repoRoot, encoding: "utf8" }).trim();
    if (dirty) commit += " (with uncommitted changes)";
  } catch {
    // not a git checkout
  }
  return [
    `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, commit ${commit}`,
    `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, nginx ${nginxVersion}`,
    `every process (load generator, proxy, upstream) shares this machine's cores; load average ${loadBefore.toFixed(2)} before the run, ${os.loadavg()[0]!.toFixed(2)} after`,
    `throughput: ${tool}, ${CONNECTIONS} keep-alive connections, ${ROUNDS} × ${MAX_SECONDS} s per target; latency: open-loop constant rate ${RATE}/s, ${ROUNDS} × ${RATE_COUNT} recorded requests per target (p50 over all of them, p99 the median of the rounds' p99s)`,
  ];
}

/** One side of a paired measurement: its load and the processes charged for it. */
interface Side {
  spec: RequestSpec;
  pids: number[];
}

/** The side of a proxy process started by the benchmark: the `tools/call` at `url` with `token`. */
const sideOf = (url: string, token: string, child: Child): Side => ({ spec: toolsCallSpec(url, token), pids: processTree(child.pid) });

/**
 * `n` pairs of `load` on each of two sides, alternating which goes first: the CPU µs per request
 * of each side in each pair (`[a, b]`). `load` returns how many requests it sent.
 */
async function alternate(n: number, sides: readonly [Side, Side], load: (spec: RequestSpec) => Promise<number>): Promise<Array<[number, number]>> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    const cost: [number, number] = [0, 0];
    for (const k of i % 2 ? [1, 0] : [0, 1]) {
      const side = sides[k]!;
      const c0 = cpuMicros(side.pids);
      const requests = await load(side.spec);
      cost[k] = (cpuMicros(side.pids) - c0) / Math.max(1, requests);
    }
    out.push(cost);
  }
  return out;
}

/** Flat out in alternating pairs: `a`'s CPU per request over `b`'s, per pair (see {@link RATIO_PAIRS}). */
async function ratioPairs(a: Side, b: Side, tool: "wrk" | "autocannon", tmp: string): Promise<number[]> {
  const pairs = await alternate(RATIO_PAIRS, [a, b], async (spec) => (await closedLoop(tool, spec, { connections: CONNECTIONS, seconds: RATIO_SECONDS, tmpDir: tmp })).requests);
  log(`ratio pairs, CPU µs/request, median: ${quantile(pairs.map((p) => p[0]), 0.5)?.toFixed(0)} over ${quantile(pairs.map((p) => p[1]), 0.5)?.toFixed(0)}`);
  return pairs.map(([x, y]) => x / y);
}

/** At the fixed rate in alternating pairs: `a`'s CPU per request over `b`'s, per pair (see {@link RATE_RATIO_PAIRS}). */
async function rateRatioPairs(a: Side, b: Side): Promise<number[]> {
  const pairs = await alternate(RATE_RATIO_PAIRS, [a, b], async (spec) => {
    await rateRun(spec, RATE_COUNT, RATE_WARMUP);
    return RATE_COUNT + RATE_WARMUP;
  });
  log(`ratio pairs at ${RATE}/s, CPU µs/request, median: ${quantile(pairs.map((p) => p[0]), 0.5)?.toFixed(0)} over ${quantile(pairs.map((p) => p[1]), 0.5)?.toFixed(0)}`);
  return pairs.map(([x, y]) => x / y);
}

/**
 * Warms each side WARM_SECONDS flat out, in windows of WARM_WINDOW_SECONDS taken in turn: each
 * window opens new connections, and a process that has only ever seen one set of them still
 * recompiles its request path when the next set arrives (seen on Node 24 with --trace-opt:
 * ~100 compilations in the first windows after one long warm-up run, a handful once it had seen
 * several).
 */
async function warmInWindows(sides: readonly Side[], tool: "wrk" | "autocannon", tmp: string): Promise<void> {
  for (let done = 0; done < WARM_SECONDS; done += WARM_WINDOW_SECONDS) {
    for (const { spec } of sides) await closedLoop(tool, spec, { connections: CONNECTIONS, seconds: WARM_WINDOW_SECONDS, tmpDir: tmp });
  }
}

const nodeVersion = (bin: string) => execFileSync(bin, ["--version"], { encoding: "utf8" }).trim();

/**
 * The ratio goal on another Node binary (`--node`): a gateway in the default configuration
 * (`memory:` store) and the bare Node proxy, both on `bin`, warmed, then the flat-out and the
 * fixed-rate pairs, as on this Node. Both processes are stopped before it returns.
 */
async function measureOtherLine(bin: string, fx: BenchFixture, tool: "wrk" | "autocannon", tmp: string): Promise<OtherLine> {
  const bare = await startBareProxy(fx.upstream.port, [], bin);
  try {
    const tg = await startTollgate(fx.projectDir, { TOLLGATE_ENCRYPTION_KEY: fx.key }, [], repoRoot, [], bin);
    try {
      const a = sideOf(`http://127.0.0.1:${tg.port}/mcp`, fx.identity.token, tg.child);
      const b = sideOf(`http://127.0.0.1:${bare.port}/mcp`, fx.identity.token, bare.child);
      await warmInWindows([a, b], tool, tmp);
      const node = nodeVersion(bin);
      const flat = await ratioPairs(a, b, tool, tmp);
      log(`Node ${node}: tollgate over node, flat out, ${flat.length} alternating pairs: ${flat.map((v) => v.toFixed(2)).join(", ")}`);
      const rate = await rateRatioPairs(a, b);
      log(`Node ${node}: tollgate over node, at ${RATE}/s, ${rate.length} alternating pairs: ${rate.map((v) => v.toFixed(2)).join(", ")}`);
      return { node, flat, rate };
    } finally {
      await tg.child.stop();
    }
  } finally {
    await bare.child.stop();
  }
}

/**
 * What the audit trail costs. A difference of two noisy numbers, and across two processes the
 * difference between the processes themselves (how far V8 has optimised each, heap layout)
 * weighs as much as the audit trail. So it is measured in one process that serves both
 * configurations (bench/audit-pair.ts), loaded in alternation: many short pairs, flat out and at
 * the fixed rate, in alternating order. Returns the differences (on minus off, µs/request).
 */
async function measureAuditPair(project: string, key: string, token: string, tool: "wrk" | "autocannon", tmp: string, children: Child[]): Promise<{ flat: number[]; rate: number[] }> {
  const pair = await startAuditPair(project, { TOLLGATE_ENCRYPTION_KEY: key }, AUDIT_ONLY ? NODE_BIN : undefined);
  children.push(pair.child);
  const pids = processTree(pair.child.pid);
  const sides = [
    { spec: toolsCallSpec(`http://127.0.0.1:${pair.on}/mcp`, token), pids },
    { spec: toolsCallSpec(`http://127.0.0.1:${pair.off}/mcp`, token), pids },
  ] as const;
  for (const { spec } of sides) {
    const res = await fetch(spec.url, { method: "POST", headers: spec.headers, body: TOOLS_CALL_BODY });
    if (res.status !== 200 || !(await res.text()).includes('"hello"')) throw new Error(`audit pair: unexpected answer ${res.status} from ${spec.url}`);
  }
  /** On minus off, CPU µs per request, per pair. */
  const pairs = async (n: number, load: (spec: RequestSpec) => Promise<number>): Promise<number[]> => (await alternate(n, sides, load)).map(([on, off]) => on - off);
  // Warmed as every other process: WARM_SECONDS flat out for each configuration.
  await warmInWindows(sides, tool, tmp);
  const flat = await pairs(AUDIT_FLAT_PAIRS, async (spec) => (await closedLoop(tool, spec, { connections: CONNECTIONS, seconds: AUDIT_FLAT_SECONDS, tmpDir: tmp })).requests);
  const rate = await pairs(AUDIT_RATE_PAIRS, async (spec) => {
    await rateRun(spec, AUDIT_RATE_COUNT, RATE_WARMUP);
    return AUDIT_RATE_COUNT + RATE_WARMUP;
  });
  await pair.child.stop();
  log(`audit trail on vs off in one process: flat out ${flat.map((d) => d.toFixed(0)).join(", ")} µs (mean ${meanAndError(flat)}); at ${RATE}/s ${rate.map((d) => d.toFixed(0)).join(", ")} µs (mean ${meanAndError(rate)})`);
  return { flat, rate };
}

async function main(): Promise<void> {
  if (!haveProc()) {
    log("This benchmark reads CPU time and memory from /proc and runs on Linux only.");
    process.exitCode = 1;
    return;
  }
  const started = Date.now();
  const loadBefore = os.loadavg()[0]!;
  const notes: string[] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-bench-"));
  const children: Child[] = [];
  const tool = await throughputTool();
  if (tool !== "wrk") {
    log("wrk is not installed (Debian: apt-get update && apt-get install -y wrk); using autocannon, which needs more CPU itself.");
    notes.push("wrk was not installed; autocannon generated the closed-loop load.");
  }
  const nginxBin = findNginx();
  if (!nginxBin) {
    log("nginx is not installed (Debian: apt-get update && apt-get install -y nginx); skipping the nginx column.");
    notes.push("nginx was not installed; no nginx column.");
  }
  let fixture: BenchFixture | undefined;
  const interrupted = async () => {
    for (const c of children) await c.stop();
    process.exit(130);
  };
  process.once("SIGINT", interrupted).once("SIGTERM", interrupted);
  const targets: Target[] = [];
  const acc = () => ({ reqMax: 0, secMax: 0, cpuMax: 0, failMax: 0, reqRate: 0, cpuRate: 0, upCpu: 0, lat: [] as number[], p99s: [] as number[], cpuRounds: [] as number[], cpuMaxRounds: [] as number[], failRate: 0 });
  try {
    const withTx = (!PROFILE_ONLY || PROFILE_TX) && (await tokenExchangeAvailable());
    fixture = await startBenchFixture({ tmpDir: tmp, tokenExchange: withTx });
    const { identity, upstream, upstreamUrl, projectDir: project, key } = fixture;
    children.push(upstream.child);
    targets.push({ name: "direct", label: "direct to upstream", kind: "direct", url: upstreamUrl, child: undefined, acc: acc() });
    if (NODE_BIN !== undefined) {
      if (PROFILE_ONLY || RATIO_WORKERS) throw new Error("--node: not with --profile-only, nor with --ratio-only --workers (whose store is SQLite)");
      if (AUDIT_ONLY || RATIO_ONLY) log(`Both proxies on ${NODE_BIN}: Node ${nodeVersion(NODE_BIN)}`);
    }
    if (AUDIT_ONLY) {
      await measureAuditPair(project, key, identity.token, tool, tmp, children);
      return;
    }
    if (nginxBin && !PROFILE_ONLY) {
      const ngx = await startNginx(nginxBin, tmp, upstream.port);
      children.push(ngx.child);
      targets.push({ name: "nginx", label: "nginx (keep-alive upstream)", kind: "nginx", url: `http://127.0.0.1:${ngx.port}/mcp`, child: ngx.child, acc: acc() });
    }
    if (!PROFILE_ONLY) {
      const bare = await startBareProxy(upstream.port, [], RATIO_ONLY ? NODE_BIN : undefined);
      children.push(bare.child);
      targets.push({ name: "node", label: "bare node:http + undici.request", kind: "node", url: `http://127.0.0.1:${bare.port}/mcp`, child: bare.child, acc: acc() });
    }
    if (!PROFILE_ONLY && (!RATIO_ONLY || RATIO_WORKERS)) {
      // The same bare proxy in two cluster workers: the yardstick for `--workers 2`.
      const bare2 = await startBareProxy(upstream.port, [], process.execPath, 2);
      children.push(bare2.child);
      targets.push({ name: "node-w2", label: "bare node:http + undici.request, 2 processes (node:cluster)", kind: "node", url: `http://127.0.0.1:${bare2.port}/mcp`, child: bare2.child, acc: acc() });
    }
    // Two workers behind one socket (SQLite store: the memory store cannot be shared between processes).
    const startWorkers2 = () => startTollgate(project, { TOLLGATE_ENCRYPTION_KEY: key, TOLLGATE_STORE: `sqlite:${path.join(tmp, "w2.db")}` }, [], repoRoot, ["--workers", "2"]);
    if (RATIO_ONLY) {
      // Just the ratio goal, warmed, in alternating pairs: the default configuration against the
      // bare Node proxy; with --workers, the two-worker gateway against bare Node in two processes
      // and in one, and the two bare proxies against each other.
      const targetSide = (name: string) => {
        const t = targets.find((x) => x.name === name)!;
        return sideOf(t.url, identity.token, t.child!);
      };
      const bareSide = targetSide("node");
      let warmUp: Side[];
      let comparisons: Array<readonly [string, Side, Side]>;
      if (RATIO_WORKERS) {
        const w2 = await startWorkers2();
        children.push(w2.child);
        const tgSide = sideOf(`http://127.0.0.1:${w2.port}/mcp`, identity.token, w2.child);
        const bare2Side = targetSide("node-w2");
        // Two processes share the load: each gets half the requests, so twice the time.
        warmUp = [tgSide, tgSide, bare2Side, bare2Side, bareSide];
        comparisons = [
          ["Tollgate --workers 2 over bare Node in 2 processes", tgSide, bare2Side],
          ["Tollgate --workers 2 over bare Node in 1 process", tgSide, bareSide],
          ["bare Node in 2 processes over 1", bare2Side, bareSide],
        ];
      } else {
        const tg = await startTollgate(project, { TOLLGATE_ENCRYPTION_KEY: key }, [], repoRoot, [], NODE_BIN);
        children.push(tg.child);
        const tgSide = sideOf(`http://127.0.0.1:${tg.port}/mcp`, identity.token, tg.child);
        warmUp = [tgSide, bareSide];
        comparisons = [["Tollgate (default configuration) over bare Node", tgSide, bareSide]];
      }
      // In windows, as the full run warms (see warmInWindows).
      await warmInWindows(warmUp, tool, tmp);
      for (const [name, a, b] of comparisons) {
        const ratios = RATIO_RATE ? await rateRatioPairs(a, b) : await ratioPairs(a, b, tool, tmp);
        const how = RATIO_RATE ? `at ${RATE}/s, ${ratios.length} alternating pairs of ${RATE_COUNT + RATE_WARMUP} requests` : `flat out, ${ratios.length} alternating ${RATIO_SECONDS} s pairs`;
        log(`${name}, ${how}: median ${quantile(ratios, 0.5)?.toFixed(3)}× (${ratios.map((r) => r.toFixed(2)).join(", ")}; mean ${meanAndError(ratios, 3)})`);
      }
      return;
    }
    if (PROFILE_ONLY) {
      const storeSpec = `sqlite:${path.join(tmp, "tx.db")}`;
      if (PROFILE_TX) {
        if (!withTx) throw new Error("--tx: the token-exchange policy is not available");
        await seedGrant({ storeSpec, projectDir: project, encryptionKey: key, subject: "bench-user", upstreamId: TX_UPSTREAM_ID, accessToken: "bench-upstream-token", resource: upstreamUrl });
      }
      const which = PROFILE_TX ? { path: "/mcp-tx", store: storeSpec } : PROFILE_BARE ? { path: "/mcp-bare" } : undefined;
      log(await profileGateway(project, key, identity.token, tool, tmp, which));
      return;
    }
    // The default configuration (access log on, `info`), one process; its policy-free route; the
    // same project tuned (access log off); and two workers behind one socket.
    const tg = await startTollgate(project, { TOLLGATE_ENCRYPTION_KEY: key });
    children.push(tg.child);
    targets.push({ name: "tollgate", label: "Tollgate: JWT + set-headers + MCP proxy (default configuration)", kind: "tollgate", url: `http://127.0.0.1:${tg.port}/mcp`, child: tg.child, acc: acc() });
    targets.push({ name: "tollgate-bare", label: "Tollgate: MCP proxy without policies (same process)", kind: "tollgate", url: `http://127.0.0.1:${tg.port}/mcp-bare`, child: tg.child, acc: acc() });
    const tuned = await startTollgate(project, { TOLLGATE_ENCRYPTION_KEY: key, TOLLGATE_LOG_LEVEL: "warn" });
    children.push(tuned.child);
    targets.push({ name: "tollgate-tuned", label: "Tollgate tuned: same, access log off (TOLLGATE_LOG_LEVEL=warn)", kind: "tollgate", url: `http://127.0.0.1:${tuned.port}/mcp`, child: tuned.child, acc: acc() });
    // The same with the audit trail and MCP metrics off: what they cost is the paired difference.
    const noAudit = await startTollgate(project, { TOLLGATE_ENCRYPTION_KEY: key, TOLLGATE_AUDIT: "off" });
    children.push(noAudit.child);
    targets.push({ name: "tollgate-noaudit", label: "Tollgate: default configuration, audit trail and MCP metrics off (TOLLGATE_AUDIT=off)", kind: "tollgate", url: `http://127.0.0.1:${noAudit.port}/mcp`, child: noAudit.child, acc: acc() });
    const w2 = await startWorkers2();
    children.push(w2.child);
    targets.push({ name: "tollgate-w2", label: "Tollgate: default configuration, --workers 2 (SQLite store)", kind: "tollgate", url: `http://127.0.0.1:${w2.port}/mcp`, child: w2.child, acc: acc() });
    if (!withTx) {
      log("Token-exchange target skipped: McpTokenExchangeInboundPolicy is not registered as a built-in yet (see bench/seed-grant.ts).");
      notes.push("Token-exchange target pending: the policy is not registered as a built-in yet.");
    } else {
      const storeSpec = `sqlite:${path.join(tmp, "tx.db")}`;
      try {
        await seedGrant({ storeSpec, projectDir: project, encryptionKey: key, subject: "bench-user", upstreamId: TX_UPSTREAM_ID, accessToken: "bench-upstream-token", resource: upstreamUrl });
        const tx = await startTollgate(project, { TOLLGATE_ENCRYPTION_KEY: key, TOLLGATE_STORE: storeSpec });
        children.push(tx.child);
        targets.push({ name: "tollgate-tx", label: "Tollgate: same + token exchange (warm grant)", kind: "tollgate", url: `http://127.0.0.1:${tx.port}/mcp-tx`, child: tx.child, acc: acc() });
        targets.push({ name: "tollgate-txbase", label: "Tollgate: JWT route, in the token-exchange process (control)", kind: "tollgate", url: `http://127.0.0.1:${tx.port}/mcp`, child: tx.child, acc: acc() });
        notes.push(
          "The token-exchange route runs in its own gateway process on a SQLite store seeded before start (a memory store cannot be seeded from outside); " +
            "the control row is the JWT route of that same process, and the token-exchange goal compares the two.",
        );
      } catch (err) {
        log(`Token-exchange target skipped: ${(err as Error).message}`);
        notes.push(`Token-exchange target skipped: ${(err as Error).message}`);
      }
    }

    const specFor = (t: Target): RequestSpec => toolsCallSpec(t.url, identity.token);

    // Each target must answer the call correctly; the gateway must refuse a call without a token,
    // never forward the caller's token, and (token exchange) attach the user's upstream token.
    const authSeen = async () => ((await (await fetch(`http://127.0.0.1:${upstream.port}/stats`)).json()) as { withAuthorization: number }).withAuthorization;
    for (const t of targets) {
      const spec = specFor(t);
      const seen = await authSeen();
      const res = await fetch(t.url, { method: "POST", headers: spec.headers, body: TOOLS_CALL_BODY });
      const text = await res.text();
      if (res.status !== 200 || !text.includes('"hello"')) throw new Error(`${t.name}: unexpected answer ${res.status} ${text.slice(0, 300)}`);
      const forwarded = (await authSeen()) - seen;
      const expected = t.kind === "direct" || t.name === "tollgate-tx" ? 1 : 0;
      if (forwarded !== expected) throw new Error(`${t.name}: upstream saw an Authorization header ${forwarded} time(s), expected ${expected}`);
      if (t.kind === "tollgate" && t.name !== "tollgate-bare") {
        const { authorization: _, ...anon } = spec.headers;
        const denied = await fetch(t.url, { method: "POST", headers: anon, body: TOOLS_CALL_BODY });
        await denied.arrayBuffer();
        if (denied.status !== 401) throw new Error(`${t.name}: expected 401 without a token, got ${denied.status}`);
      }
    }
    log(`targets: ${targets.map((t) => t.name).join(", ")} (setup ${((Date.now() - started) / 1000).toFixed(1)} s)`);

    const upPids = () => processTree(upstream.child.pid);
    const proxyPids = (t: Target) => (t.child ? processTree(t.child.pid) : []);
    /** Runs `t` flat out for `seconds` in windows; returns each window's proxy CPU per request. */
    const warm = async (t: Target, seconds: number): Promise<number[]> => {
      const curve: number[] = [];
      for (let done = 0; done < seconds; done += WARM_WINDOW_SECONDS) {
        const pids = proxyPids(t);
        const c0 = cpuMicros(pids);
        const r = await closedLoop(tool, specFor(t), { connections: CONNECTIONS, seconds: Math.min(WARM_WINDOW_SECONDS, seconds - done), tmpDir: tmp });
        curve.push((cpuMicros(pids) - c0) / Math.max(1, r.requests));
      }
      return curve;
    };

    log(`warm-up (${WARM_SECONDS} s flat out per target)…`);
    const warmCurves = new Map<string, number[]>();
    for (const t of targets) {
      // Two workers share the load: each gets half the requests, so twice the time.
      const curve = await warm(t, t.name.endsWith("-w2") ? 2 * WARM_SECONDS : WARM_SECONDS);
      if (t.child) warmCurves.set(t.name, curve);
      await rateRun(specFor(t), 200, 0);
    }
    const curveOf = (name: string) => warmCurves.get(name)?.map((v) => v.toFixed(0)).join(" → ");
    log(`warm-up CPU µs/req per ${WARM_WINDOW_SECONDS} s window: node ${curveOf("node")}; tollgate ${curveOf("tollgate")}`);
    if (warmCurves.has("tollgate") && warmCurves.has("node")) {
      notes.push(
        `Warm-up left out: every process first ran ${WARM_SECONDS} s flat out (--workers 2: ${2 * WARM_SECONDS} s). CPU µs/request over those ${WARM_WINDOW_SECONDS} s windows — ` +
          `bare Node ${curveOf("node")}; Tollgate ${curveOf("tollgate")}; Tollgate, audit trail off ${curveOf("tollgate-noaudit") ?? "–"}. ` +
          "A fresh gateway process is dearer until V8 has optimised its request path.",
      );
    }

    for (let round = 0; round < ROUNDS; round++) {
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      for (const t of order) {
        const pids = proxyPids(t);
        const c0 = cpuMicros(pids);
        const r = await closedLoop(tool, specFor(t), { connections: CONNECTIONS, seconds: MAX_SECONDS, tmpDir: tmp });
        const cpu = cpuMicros(pids) - c0;
        t.acc.cpuMax += cpu;
        if (r.requests > 0) t.acc.cpuMaxRounds.push(cpu / r.requests);
        t.acc.reqMax += r.requests;
        t.acc.secMax += r.seconds;
        t.acc.failMax += r.failures;
        log(`round ${round + 1}/${ROUNDS} ${t.name.padEnd(12)} flat out: ${r.rps.toFixed(0)} req/s`);
      }
      for (const t of order) {
        const pids = proxyPids(t);
        const up = upPids();
        const c0 = cpuMicros(pids);
        const u0 = cpuMicros(up);
        const r = await rateRun(specFor(t), RATE_COUNT, RATE_WARMUP);
        const cpu = cpuMicros(pids) - c0;
        t.acc.cpuRate += cpu;
        t.acc.cpuRounds.push(cpu / (RATE_COUNT + RATE_WARMUP));
        t.acc.upCpu += cpuMicros(up) - u0;
        t.acc.reqRate += RATE_COUNT + RATE_WARMUP;
        t.acc.lat.push(...r.latenciesMs);
        t.acc.p99s.push(quantile(r.latenciesMs, 0.99) ?? NaN);
        t.acc.failRate += r.errors + r.statusErrors;
        const cpuNote = t.child ? `, proxy CPU ${(cpu / (RATE_COUNT + RATE_WARMUP)).toFixed(0)} µs/req` : "";
        log(`round ${round + 1}/${ROUNDS} ${t.name.padEnd(12)} at ${RATE}/s: p50 ${quantile(r.latenciesMs, 0.5)?.toFixed(2)} ms, p99 ${quantile(r.latenciesMs, 0.99)?.toFixed(2)} ms${cpuNote}`);
      }
    }

    // The token-exchange goal is a difference of two noisy numbers: more pairs than the rounds
    // above give, each pair the two routes of one process back to back, in alternating order.
    const txPairs: number[] = [];
    const txT = targets.find((t) => t.name === "tollgate-tx");
    const baseT = targets.find((t) => t.name === "tollgate-txbase");
    if (txT && baseT) {
      for (let i = 0; i < TX_PAIRS; i++) {
        const cost: Record<string, number> = {};
        for (const t of i % 2 ? [baseT, txT] : [txT, baseT]) {
          const pids = proxyPids(t);
          const c0 = cpuMicros(pids);
          await rateRun(specFor(t), TX_PAIR_COUNT, RATE_WARMUP);
          cost[t.name] = (cpuMicros(pids) - c0) / (TX_PAIR_COUNT + RATE_WARMUP);
        }
        txPairs.push(cost[txT.name]! - cost[baseT.name]!);
      }
      log(`token exchange vs control, ${TX_PAIRS} more pairs at ${RATE}/s: ${txPairs.map((d) => d.toFixed(0)).join(", ")} µs`);
    }

    // The ratio goal's measure: each gateway against the bare Node proxy run the same way (one
    // process, or two cluster workers) in alternating pairs, with only those processes (and
    // nginx, idle) left running.
    const PAIRED = new Set(["tollgate", "node", "tollgate-w2", "node-w2"]);
    await stopUnused(targets, (t) => PAIRED.has(t.name) || t.kind === "nginx");
    const ratios = new Map<string, number[]>();
    const rateRatios = new Map<string, number[]>();
    const side = (x: Target): Side => ({ spec: specFor(x), pids: proxyPids(x) });
    for (const [name, yardstick] of [["tollgate", "node"], ["tollgate-w2", "node-w2"]] as const) {
      const t = targets.find((x) => x.name === name);
      const nodeT = targets.find((x) => x.name === yardstick);
      if (!t || !nodeT) continue;
      const r = await ratioPairs(side(t), side(nodeT), tool, tmp);
      ratios.set(t.name, r);
      log(`${t.name} over ${nodeT.name}, flat out, ${r.length} alternating pairs: ${r.map((v) => v.toFixed(2)).join(", ")}`);
      const rr = await rateRatioPairs(side(t), side(nodeT));
      rateRatios.set(t.name, rr);
      log(`${t.name} over ${nodeT.name}, at ${RATE}/s, ${rr.length} alternating pairs: ${rr.map((v) => v.toFixed(2)).join(", ")}`);
    }

    // Another Node line's pairs run with no other proxy process left (the idle SSE step below
    // starts its Node proxies afresh anyway).
    if (NODE_BIN !== undefined) await stopUnused(targets, (t) => t.kind === "nginx");
    const otherLine = NODE_BIN !== undefined ? await measureOtherLine(NODE_BIN, fixture, tool, tmp) : undefined;

    const onT = targets.find((t) => t.name === "tollgate");
    const offT = targets.find((t) => t.name === "tollgate-noaudit");
    const auditPairs = onT && offT ? await measureAuditPair(project, key, identity.token, tool, tmp, children) : { flat: [], rate: [] };

    // Idle SSE streams. Node processes are measured fresh: after the load above their heap holds
    // garbage that a collection may return mid-measurement.
    const sseHeaders = { authorization: `Bearer ${identity.token}`, "mcp-protocol-version": "2025-11-25" };
    for (const t of targets) {
      if (t.name.endsWith("-w2") || (t.kind === "tollgate" && t.name !== "tollgate")) continue; // same streaming path as `tollgate` / `node`
      let url = t.url;
      let pids = t.child ? processTree(t.child.pid) : upPids();
      let gcChild: Child | undefined;
      if (t.kind === "tollgate" || t.kind === "node") {
        if (t.kind === "tollgate") for (const x of targets) if (x.kind === "tollgate") await x.child!.stop();
        else await t.child!.stop();
        const fresh =
          t.kind === "tollgate"
            ? await startTollgate(project, { TOLLGATE_ENCRYPTION_KEY: key }, [INSPECT])
            : await startBareProxy(upstream.port, [INSPECT]);
        children.push(fresh.child);
        url = `http://127.0.0.1:${fresh.port}/mcp`;
        pids = processTree(fresh.child.pid);
        gcChild = fresh.child;
        await rateRun(toolsCallSpec(url, identity.token), 500, 0);
      }
      const r = await measureSse(url, sseHeaders, pids, gcChild, SSE_STREAMS);
      t.sse = { kib: r.kib, open: r.open };
      log(`${t.name.padEnd(12)} ${r.open}/${SSE_STREAMS} idle SSE streams: ${r.kib.toFixed(1)} KiB RSS each${r.failed ? `, ${r.failed} failed` : ""}`);
      if (r.open < SSE_STREAMS) notes.push(`${t.name}: only ${r.open} of ${SSE_STREAMS} SSE streams opened.`);
      await waitStreamsClosed(upstream.port);
    }

    const results: TargetResult[] = targets.map((t) => ({
      name: t.name,
      label: t.label,
      kind: t.kind,
      rps: t.acc.secMax ? t.acc.reqMax / t.acc.secMax : undefined,
      throughputFailures: t.acc.failMax,
      p50: quantile(t.acc.lat, 0.5),
      // Median of the rounds' p99s: one stall caused by other work on the machine hits one round
      // of one target; a tail the gateway causes shows up in every round.
      p99: quantile(t.acc.p99s, 0.5),
      rateFailures: t.acc.failRate,
      // Median of the rounds (robust to one round disturbed by other work), with the range.
      cpuAtRate: t.child ? quantile(t.acc.cpuRounds, 0.5) : undefined,
      cpuRange: t.child ? [Math.min(...t.acc.cpuRounds), Math.max(...t.acc.cpuRounds)] : undefined,
      cpuAtMax: t.child && t.acc.reqMax ? t.acc.cpuMax / t.acc.reqMax : undefined,
      upstreamCpu: t.acc.upCpu / t.acc.reqRate,
      sseKiB: t.sse?.kib,
      sseOpen: t.sse?.open,
      ratioPairs: ratios.get(t.name),
      rateRatioPairs: rateRatios.get(t.name),
    }));
    // The two kinds of pairs (flat out, at the fixed rate): what each measured on this Node and,
    // with --node, on the other binary.
    const pairKinds = [
      { how: `flat out`, pair: `of ${RATIO_SECONDS} s`, why: `the flat-out ratio goal's measure; the tables above divide the rounds' totals`, measured: ratios, other: otherLine?.flat },
      { how: `at ${RATE}/s`, pair: `of ${RATE_COUNT + RATE_WARMUP} requests`, why: `the ${RATE}/s ratio goal's measure; the tables above take the rounds' medians`, measured: rateRatios, other: otherLine?.rate },
    ];
    const pairList = (r: number[]) => `${r.map((v) => v.toFixed(2)).join(", ")} — median ${quantile(r, 0.5)?.toFixed(2)}, mean ${meanAndError(r, 3)}.`;
    for (const { how, pair, why, measured } of pairKinds) {
      for (const [name, r] of measured) {
        notes.push(`${name} over bare Node${name.endsWith("-w2") ? " in 2 processes" : ""}, ${how}, in ${r.length} alternating pairs ${pair} (${why}): ${pairList(r)}`);
      }
    }
    for (const { how, pair, other } of pairKinds) {
      if (other) notes.push(`On Node ${otherLine!.node} (gateway with the memory: store, both proxies on that binary), tollgate over bare Node, ${how}, in ${other.length} alternating pairs ${pair}: ${pairList(other)}`);
    }
    // Token exchange vs its control: paired (same process, same minute) in every round and in the
    // extra pairs; the median of all the differences.
    const txR = results.find((r) => r.name === "tollgate-tx");
    if (txT && baseT && txR) {
      const rounds = txT.acc.cpuRounds.map((v, i) => v - baseT.acc.cpuRounds[i]!);
      txR.cpuDeltaVsControl = quantile([...rounds, ...txPairs], 0.5);
      notes.push(`Token exchange vs its control, per pair (µs/req at ${RATE}/s): ${[...rounds, ...txPairs].map((d) => d.toFixed(0)).join(", ")}; the goal row shows their median.`);
    }
    // The audit trail: the medians of the one-process pairs; the two processes' per-round
    // differences are listed beside them.
    const offR = results.find((r) => r.name === "tollgate-noaudit");
    if (onT && offT && offR) {
      const { flat, rate } = auditPairs;
      offR.auditCost = { flat: quantile(flat, 0.5), rate: quantile(rate, 0.5) };
      const acrossFlat = onT.acc.cpuMaxRounds.map((v, i) => v - offT.acc.cpuMaxRounds[i]!);
      const acrossRate = onT.acc.cpuRounds.map((v, i) => v - offT.acc.cpuRounds[i]!);
      notes.push(
        `Audit trail and MCP metrics on vs off, in one process serving both (bench/audit-pair.ts), per pair (µs/req): flat out (${AUDIT_FLAT_SECONDS} s each) ${flat.map((d) => d.toFixed(0)).join(", ")} — mean ${meanAndError(flat)}; ` +
          `at ${RATE}/s (${AUDIT_RATE_COUNT + RATE_WARMUP} requests each) ${rate.map((d) => d.toFixed(0)).join(", ")} — mean ${meanAndError(rate)}; the goal rows show the medians. ` +
          `Across the two processes of the rounds above (default configuration minus TOLLGATE_AUDIT=off, per round): flat out ${acrossFlat.map((d) => d.toFixed(0)).join(", ")}; at ${RATE}/s ${acrossRate.map((d) => d.toFixed(0)).join(", ")}.`,
      );
    }
    for (const r of results) {
      if (r.throughputFailures || r.rateFailures) notes.push(`${r.name}: ${r.throughputFailures + r.rateFailures} failed requests (non-200 or socket errors).`);
    }
    const upCpu = results.map((r) => r.upstreamCpu?.toFixed(0)).join(" / ");
    notes.push(`Upstream CPU per request (${results.map((r) => r.name).join(" / ")}): ${upCpu} µs — the same upstream work behind every target.`);
    notes.push(`CPU per request is the CPU time (user + system, all threads; from /proc/<pid>/task/*/schedstat) of the proxy process over a fixed number of requests (${RATE_WARMUP + RATE_COUNT} per round at ${RATE}/s), divided by that number; the table shows the median round, the range is in brackets. Flat-out CPU is over all rounds.`);
    notes.push(`SSE memory: RSS growth of the proxy process while ${SSE_STREAMS} more idle GET streams are held open through it (after 100 warm-up streams), divided by ${SSE_STREAMS}; Node processes (bare proxy, gateway) are fresh for this step, and a full garbage collection (through the inspector) runs before each reading.`);

    const tgResult = results.find((r) => r.name === "tollgate");
    const missed =
      tgResult &&
      ((tgResult.cpuAtRate ?? 0) > GOALS.cpuUs ||
        (tgResult.p50 ?? 0) - (results[0]?.p50 ?? 0) > GOALS.p50AddedMs ||
        (tgResult.p99 ?? 0) - (results[0]?.p99 ?? 0) > GOALS.p99AddedMs);
    let profileText = "";
    if (PROFILE || (missed && !NO_PROFILE)) {
      profileText = await profileGateway(project, key, identity.token, tool, tmp);
    }

    const report = renderReport(results, GOALS, {
      lines: machineLines(tool, nginxBin, loadBefore),
      rate: RATE,
      connections: CONNECTIONS,
      notes,
      otherLine,
    });
    const full = `# Benchmark results\n\nWritten by \`npm run bench\`; see docs/performance.md for the method.\n\n${report}${profileText}`;
    if (!QUICK) fs.writeFileSync(path.join(repoRoot, "bench", "results.md"), full);
    log("");
    log(full);
    log(`total ${((Date.now() - started) / 1000).toFixed(0)} s${QUICK ? " (quick run: bench/results.md not written)" : ", written to bench/results.md"}`);
  } finally {
    for (const c of children.reverse()) await c.stop();
    await fixture?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function waitStreamsClosed(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/stats`);
    const { openStreams } = (await res.json()) as { openStreams: number };
    if (openStreams === 0) return;
    await sleep(100);
  }
}

/** Runs a separate gateway under `--cpu-prof`, loads it flat out, and lists the hot spots. */
async function profileGateway(
  project: string,
  key: string,
  token: string,
  tool: "wrk" | "autocannon",
  tmp: string,
  tx?: { path: string; store?: string },
): Promise<string> {
  const dir = path.join(tmp, "profile");
  fs.mkdirSync(dir, { recursive: true });
  log("profiling the gateway (node --cpu-prof)…");
  const env: Record<string, string> = { TOLLGATE_ENCRYPTION_KEY: key, ...(tx?.store ? { TOLLGATE_STORE: tx.store } : {}) };
  const gw = await startTollgate(project, env, ["--cpu-prof", "--cpu-prof-interval", "250", "--cpu-prof-dir", dir]);
  const spec = toolsCallSpec(`http://127.0.0.1:${gw.port}${tx?.path ?? "/mcp"}`, token);
  let count: number;
  if (PROFILE_FLAT) {
    // Warmed like the measured processes, then flat out: the regime of the flat-out ratio.
    await closedLoop(tool, spec, { connections: CONNECTIONS, seconds: WARM_SECONDS, tmpDir: tmp });
    count = (await closedLoop(tool, spec, { connections: CONNECTIONS, seconds: PROFILE_SECONDS, tmpDir: tmp })).requests;
  } else {
    await closedLoop(tool, spec, { connections: CONNECTIONS, seconds: 2, tmpDir: tmp });
    // Profile the regime the CPU target is about: a steady RATE requests per second.
    count = PROFILE_SECONDS * RATE;
    await rateRun(spec, count, 0);
  }
  const loadEnd = performance.now();
  await gw.child.stop();
  const skipEndMs = performance.now() - loadEnd;
  const file = newestProfile(dir);
  if (!file) return "\n## Profile\n\nNo profile was written (the gateway must exit normally on SIGTERM).\n";
  const kept = path.join(os.tmpdir(), `tollgate-gateway-${Date.now()}.cpuprofile`);
  fs.copyFileSync(file, kept);
  log(`raw profile (open in Chrome DevTools or speedscope): ${kept}`);
  // Only the measured load: start-up, warm-up and shutdown are left out.
  const window = { ms: PROFILE_SECONDS * 1000, skipEndMs: skipEndMs + 50 };
  return renderProfile(summarise(file, repoRoot, 20, window), count, PROFILE_FLAT ? undefined : RATE);
}

await main();
