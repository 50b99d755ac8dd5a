/**
 * `npm run bench`: MCP `tools/call` through Tollgate, compared with the same calls straight to
 * the upstream and through nginx, all measured in one run and interleaved (every round visits
 * every target, in a rotating order) so machine noise hits all of them alike.
 *
 *   npm run bench                 # full run, about two minutes
 *   npm run bench -- --profile    # also profile the gateway (node --cpu-prof) and list hot spots
 *   npm run bench -- --quick      # one short round, for checking the harness itself
 *   npm run bench -- --profile-only   # only the profile (for working on hot spots)
 *
 * Needs Linux (`/proc` for CPU time and RSS). nginx and wrk come from the OS packages
 * (`apt-get install -y nginx wrk`); without them the nginx column is skipped and autocannon
 * replaces wrk. The benchmark installs nothing itself. Not a test: it asserts nothing.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { generateKey } from "../src/store/crypto.js";
import { closedLoop, throughputTool, type RequestSpec } from "./closed-loop.js";
import { cpuMicros, haveProc, processTree, rssKiB } from "./proc.js";
import { newestProfile, summarise } from "./profile.js";
import { writeBenchProject, TX_UPSTREAM_ID } from "./project.js";
import { quantile, renderReport, type Goals, type TargetResult } from "./report.js";
import { seedGrant, tokenExchangeAvailable } from "./seed-grant.js";
import { openIdleStreams } from "./sse.js";
import { findNginx, repoRoot, startBareProxy, startIdentity, startNginx, startTollgate, startUpstream, type Child } from "./targets.js";

const argv = new Set(process.argv.slice(2));
const QUICK = argv.has("--quick");
const PROFILE_ONLY = argv.has("--profile-only");
const PROFILE = argv.has("--profile") || PROFILE_ONLY;
const NO_PROFILE = argv.has("--no-profile");
const ROUNDS = QUICK ? 1 : 3;
const CONNECTIONS = 32;
const MAX_SECONDS = QUICK ? 2 : 3;
const RATE = 500;
const RATE_COUNT = QUICK ? 1000 : 1500; // per round and target: 3 s at 500/s
const RATE_WARMUP = 100;
const SSE_STREAMS = 1000;
const PROFILE_SECONDS = 6;
const AUDIENCE = "https://tollgate-bench.example";
const GOALS: Goals = { cpuUs: 300, p50AddedMs: 0.6, p99AddedMs: 5, sseKiB: 30, txDeltaUs: 50 };

const BODY = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "tools/call",
  params: { name: "echo", arguments: { text: "hello" } },
});

interface Target {
  name: string;
  label: string;
  kind: TargetResult["kind"];
  url: string;
  /** The process whose CPU and memory are charged to this target (undefined for direct). */
  child: Child | undefined;
  acc: { reqMax: number; secMax: number; cpuMax: number; failMax: number; reqRate: number; cpuRate: number; upCpu: number; lat: number[]; failRate: number };
  sse?: { kib: number; open: number };
}

/** The measured request: an MCP `tools/call` with the user's bearer token. */
function postSpec(url: string, token: string): RequestSpec {
  return {
    url,
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-11-25",
      authorization: `Bearer ${token}`,
    },
    body: BODY,
  };
}

const log = (msg: string) => process.stdout.write(`${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rateRun(spec: RequestSpec, count: number, warmup: number) {
  return new Promise<{ ok: number; errors: number; statusErrors: number; latenciesMs: number[] }>((resolve, reject) => {
    const input = JSON.stringify({ ...spec, rate: RATE, count, warmup, connections: CONNECTIONS });
    const p = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "bench", "loadgen.ts"), input], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    p.on("exit", (code) => {
      if (code === 0) resolve(JSON.parse(out) as never);
      else reject(new Error(`load generator exited with ${code}`));
    });
  });
}

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
    `throughput: ${tool}, ${CONNECTIONS} keep-alive connections, ${ROUNDS} × ${MAX_SECONDS} s per target; latency: open-loop constant rate ${RATE}/s, ${ROUNDS} × ${RATE_COUNT} recorded requests per target`,
  ];
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
  const identity = await startIdentity(AUDIENCE);
  const targets: Target[] = [];
  const acc = () => ({ reqMax: 0, secMax: 0, cpuMax: 0, failMax: 0, reqRate: 0, cpuRate: 0, upCpu: 0, lat: [] as number[], failRate: 0 });
  try {
    const upstream = await startUpstream();
    children.push(upstream.child);
    const upstreamUrl = `http://127.0.0.1:${upstream.port}/mcp`;
    targets.push({ name: "direct", label: "direct to upstream", kind: "direct", url: upstreamUrl, child: undefined, acc: acc() });
    if (nginxBin && !PROFILE_ONLY) {
      const ngx = await startNginx(nginxBin, tmp, upstream.port);
      children.push(ngx.child);
      targets.push({ name: "nginx", label: "nginx (keep-alive upstream)", kind: "nginx", url: `http://127.0.0.1:${ngx.port}/mcp`, child: ngx.child, acc: acc() });
    }
    if (!PROFILE_ONLY) {
      const bare = await startBareProxy(upstream.port);
      children.push(bare.child);
      targets.push({ name: "node", label: "bare node:http + undici.request", kind: "node", url: `http://127.0.0.1:${bare.port}/mcp`, child: bare.child, acc: acc() });
    }
    const project = path.join(tmp, "project");
    const withTx = !PROFILE_ONLY && (await tokenExchangeAvailable());
    writeBenchProject(project, { upstreamUrl, issuer: identity.issuer, audience: AUDIENCE, jwksUrl: identity.jwksUrl, tokenExchange: withTx });
    const key = generateKey();
    if (PROFILE_ONLY) {
      log(await profileGateway(project, key, (t) => postSpec(t.url, identity.token), tool, tmp));
      return;
    }
    const tg = await startTollgate(project, { TOLLGATE_ENCRYPTION_KEY: key });
    children.push(tg.child);
    targets.push({ name: "tollgate", label: "Tollgate: JWT + set-headers + MCP proxy", kind: "tollgate", url: `http://127.0.0.1:${tg.port}/mcp`, child: tg.child, acc: acc() });
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
        notes.push("The token-exchange target runs in its own gateway process on a SQLite store seeded before start (a memory store cannot be seeded from outside).");
      } catch (err) {
        log(`Token-exchange target skipped: ${(err as Error).message}`);
        notes.push(`Token-exchange target skipped: ${(err as Error).message}`);
      }
    }

    const specFor = (t: Target): RequestSpec => postSpec(t.url, identity.token);

    // Each target must answer the call correctly, and the gateway must refuse a call without a token.
    for (const t of targets) {
      const spec = specFor(t);
      const res = await fetch(t.url, { method: "POST", headers: spec.headers, body: BODY });
      const text = await res.text();
      if (res.status !== 200 || !text.includes('"hello"')) throw new Error(`${t.name}: unexpected answer ${res.status} ${text.slice(0, 300)}`);
      if (t.kind === "tollgate") {
        const { authorization: _, ...anon } = spec.headers;
        const denied = await fetch(t.url, { method: "POST", headers: anon, body: BODY });
        await denied.arrayBuffer();
        if (denied.status !== 401) throw new Error(`${t.name}: expected 401 without a token, got ${denied.status}`);
      }
    }
    log(`targets: ${targets.map((t) => t.name).join(", ")} (setup ${((Date.now() - started) / 1000).toFixed(1)} s)`);

    const upPids = () => processTree(upstream.child.pid);
    const proxyPids = (t: Target) => (t.child ? processTree(t.child.pid) : []);

    log("warm-up…");
    for (const t of targets) {
      await closedLoop(tool, specFor(t), { connections: CONNECTIONS, seconds: 1, tmpDir: tmp });
      await rateRun(specFor(t), 200, 0);
    }

    for (let round = 0; round < ROUNDS; round++) {
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      for (const t of order) {
        const pids = proxyPids(t);
        const c0 = cpuMicros(pids);
        const r = await closedLoop(tool, specFor(t), { connections: CONNECTIONS, seconds: MAX_SECONDS, tmpDir: tmp });
        t.acc.cpuMax += cpuMicros(pids) - c0;
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
        t.acc.cpuRate += cpuMicros(pids) - c0;
        t.acc.upCpu += cpuMicros(up) - u0;
        t.acc.reqRate += RATE_COUNT + RATE_WARMUP;
        t.acc.lat.push(...r.latenciesMs);
        t.acc.failRate += r.errors + r.statusErrors;
        log(`round ${round + 1}/${ROUNDS} ${t.name.padEnd(12)} at ${RATE}/s: p50 ${quantile(r.latenciesMs, 0.5)?.toFixed(2)} ms, p99 ${quantile(r.latenciesMs, 0.99)?.toFixed(2)} ms`);
      }
    }

    // Idle SSE streams. The gateway is measured on a fresh process: after the load above its
    // heap holds garbage that a collection may return mid-measurement.
    const sseHeaders = { authorization: `Bearer ${identity.token}`, "mcp-protocol-version": "2025-11-25" };
    for (const t of targets) {
      if (t.name === "tollgate-tx") continue; // same streaming path as `tollgate`
      let url = t.url;
      let pids = t.child ? processTree(t.child.pid) : upPids();
      if (t.kind === "tollgate") {
        for (const x of targets) if (x.kind === "tollgate") await x.child!.stop();
        const fresh = await startTollgate(project, { TOLLGATE_ENCRYPTION_KEY: key });
        children.push(fresh.child);
        url = `http://127.0.0.1:${fresh.port}/mcp`;
        pids = processTree(fresh.child.pid);
        await rateRun(postSpec(url, identity.token), 500, 0);
      }
      const r = await measureSse(url, sseHeaders, pids);
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
      p99: quantile(t.acc.lat, 0.99),
      rateFailures: t.acc.failRate,
      cpuAtRate: t.child ? t.acc.cpuRate / t.acc.reqRate : undefined,
      cpuAtMax: t.child && t.acc.reqMax ? t.acc.cpuMax / t.acc.reqMax : undefined,
      upstreamCpu: t.acc.upCpu / t.acc.reqRate,
      sseKiB: t.sse?.kib,
      sseOpen: t.sse?.open,
    }));
    for (const r of results) {
      if (r.throughputFailures || r.rateFailures) notes.push(`${r.name}: ${r.throughputFailures + r.rateFailures} failed requests (non-200 or socket errors).`);
    }
    const upCpu = results.map((r) => r.upstreamCpu?.toFixed(0)).join(" / ");
    notes.push(`Upstream CPU per request (${results.map((r) => r.name).join(" / ")}): ${upCpu} µs — the same upstream work behind every target.`);
    notes.push("CPU per request is user + system time of the proxy process (from /proc/<pid>/stat) over a fixed number of requests, divided by that number.");
    notes.push(`SSE memory: RSS growth of the proxy process while ${SSE_STREAMS} more idle GET streams are held open through it (after 100 warm-up streams), divided by ${SSE_STREAMS}; the gateway is a fresh process for this step.`);

    const tgResult = results.find((r) => r.name === "tollgate");
    const missed =
      tgResult &&
      ((tgResult.cpuAtRate ?? 0) > GOALS.cpuUs ||
        (tgResult.p50 ?? 0) - (results[0]?.p50 ?? 0) > GOALS.p50AddedMs ||
        (tgResult.p99 ?? 0) - (results[0]?.p99 ?? 0) > GOALS.p99AddedMs);
    let profileText = "";
    if (PROFILE || (missed && !NO_PROFILE)) {
      profileText = await profileGateway(project, key, specFor, tool, tmp);
    }

    const report = renderReport(results, GOALS, {
      lines: machineLines(tool, nginxBin, loadBefore),
      rate: RATE,
      connections: CONNECTIONS,
      notes,
    });
    const full = `# Benchmark results\n\nWritten by \`npm run bench\`; see docs/performance.md for the method.\n\n${report}${profileText}`;
    if (!QUICK) fs.writeFileSync(path.join(repoRoot, "bench", "results.md"), full);
    log("");
    log(full);
    log(`total ${((Date.now() - started) / 1000).toFixed(0)} s${QUICK ? " (quick run: bench/results.md not written)" : ", written to bench/results.md"}`);
  } finally {
    for (const c of children.reverse()) await c.stop();
    identity.server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * RSS growth per idle stream: a first batch of streams warms every code path and allocation
 * pool, then the growth from holding SSE_STREAMS more is divided by their number.
 */
async function measureSse(url: string, headers: Record<string, string>, pids: number[]) {
  const warm = await openIdleStreams(url, headers, 100);
  await sleep(1000);
  const before = rssKiB(pids);
  const held = await openIdleStreams(url, headers, SSE_STREAMS);
  await sleep(1000);
  const after = rssKiB(pids);
  warm.close();
  held.close();
  return { kib: held.open ? (after - before) / held.open : NaN, open: held.open, failed: held.failed + warm.failed };
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
  specFor: (t: Target) => RequestSpec,
  tool: "wrk" | "autocannon",
  tmp: string,
): Promise<string> {
  const dir = path.join(tmp, "profile");
  fs.mkdirSync(dir, { recursive: true });
  log("profiling the gateway (node --cpu-prof)…");
  const gw = await startTollgate(project, { TOLLGATE_ENCRYPTION_KEY: key }, ["--cpu-prof", "--cpu-prof-interval", "250", "--cpu-prof-dir", dir]);
  const spec = specFor({ url: `http://127.0.0.1:${gw.port}/mcp` } as Target);
  await closedLoop(tool, spec, { connections: CONNECTIONS, seconds: 2, tmpDir: tmp });
  // Profile the regime the CPU target is about: a steady RATE requests per second.
  const count = PROFILE_SECONDS * RATE;
  await rateRun(spec, count, 0);
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
  const { total, spots, inclusive, areas } = summarise(file, repoRoot, 20, window);
  const pct = (s: { share: number }) => (s.share * 100).toFixed(1);
  const per = (s: { selfMs: number }) => ((s.selfMs * 1000) / count).toFixed(1);
  const lines = [
    "",
    `## Profile of the gateway at ${RATE} req/s`,
    "",
    `${(total / 1000).toFixed(2)} s of busy samples over ${count} requests (${((total * 1000) / count).toFixed(0)} µs each, profiler overhead included), idle excluded. Line numbers are each function's first line.`,
    "",
    "Hottest functions by self time:",
    "",
    "| self % | µs/req | function | where |",
    "|---:|---:|---|---|",
    ...spots.map((s) => `| ${pct(s)} | ${per(s)} | \`${s.fn}\` | ${s.where} |`),
    "",
    "The gateway's own functions by inclusive time (the function and everything it calls):",
    "",
    "| incl. % | µs/req | function | where |",
    "|---:|---:|---|---|",
    ...inclusive.map((s) => `| ${pct(s)} | ${per(s)} | \`${s.fn}\` | ${s.where} |`),
    "",
    "Self time by area:",
    "",
    "| self % | µs/req | area |",
    "|---:|---:|---|",
    ...areas.map((a) => `| ${pct(a)} | ${per(a)} | ${a.where} |`),
  ];
  return `${lines.join("\n")}\n`;
}

await main();
