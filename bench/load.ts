/**
 * The two kinds of load: closed-loop throughput runs with a fixed number of connections (`wrk`
 * when installed — C, cheap on the shared CPU — else `autocannon` from the dev dependencies), and
 * open-loop constant-rate runs (`bench/loadgen.ts` in its own process) for latency.
 */
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface RequestSpec {
  url: string;
  method: "POST" | "GET";
  headers: Record<string, string>;
  body?: string;
}

/** The JWT audience of the benchmark's gateway project. */
export const BENCH_AUDIENCE = "https://tollgate-bench.example";

/** The measured call: an MCP `tools/call` the upstream answers with a fixed result. */
export const TOOLS_CALL_BODY = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "tools/call",
  params: { name: "echo", arguments: { text: "hello" } },
});

/** The measured request: the `tools/call` POST with the user's bearer token. */
export function toolsCallSpec(url: string, token: string): RequestSpec {
  return {
    url,
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-11-25",
      authorization: `Bearer ${token}`,
    },
    body: TOOLS_CALL_BODY,
  };
}

export interface ThroughputResult {
  requests: number;
  seconds: number;
  rps: number;
  /** Non-2xx answers plus socket errors; a healthy run has 0. */
  failures: number;
}

/** Which closed-loop tool is available. */
export async function throughputTool(): Promise<"wrk" | "autocannon"> {
  try {
    await run("wrk", ["--version"]).catch((err: { stdout?: string }) => {
      // wrk --version exits 1 after printing its banner
      if (!String(err.stdout ?? "").includes("wrk")) throw err;
    });
    return "wrk";
  } catch {
    return "autocannon";
  }
}

/**
 * The request as it goes on the wire: `Host`, then the spec's fields in the order it lists them,
 * then `Content-Length`. Written out whole because wrk's own `wrk.headers` is a Lua table, whose
 * order LuaJIT draws afresh in every run: each run would then send its fields in another order,
 * as no real client does (one client sends one order), and every new order gives Node's
 * `req.headers` object a new hidden class, which sends the V8 code reading it through another
 * round of deoptimisation and recompilation at the start of every run (measured in
 * docs/performance.md, "Header order").
 */
export function rawRequest(spec: RequestSpec): string {
  const url = new URL(spec.url);
  const lines = [`${spec.method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  for (const [k, v] of Object.entries(spec.headers)) lines.push(`${k}: ${v}`);
  if (spec.body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(spec.body)}`);
  return `${lines.join("\r\n")}\r\n\r\n${spec.body ?? ""}`;
}

function luaString(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n").replace(/\r/g, "\\r")}"`;
}

/** Writes the wrk Lua script for one request shape: the same bytes for every request. */
function wrkScript(dir: string, spec: RequestSpec): string {
  const lines = [`local raw = ${luaString(rawRequest(spec))}`, "request = function() return raw end"];
  const file = path.join(dir, `wrk-${Math.random().toString(36).slice(2)}.lua`);
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

/** Runs `connections` keep-alive connections flat out for `seconds`. */
export async function closedLoop(
  tool: "wrk" | "autocannon",
  spec: RequestSpec,
  opts: { connections: number; seconds: number; tmpDir: string },
): Promise<ThroughputResult> {
  if (tool === "wrk") {
    const script = wrkScript(opts.tmpDir, spec);
    const { stdout } = await run("wrk", ["-t1", `-c${opts.connections}`, `-d${opts.seconds}s`, "-s", script, spec.url]);
    fs.rmSync(script, { force: true });
    const m = /(\d+) requests in ([\d.]+)(m?s)/.exec(stdout);
    if (!m) throw new Error(`unexpected wrk output:\n${stdout}`);
    const requests = Number(m[1]);
    const seconds = Number(m[2]) / (m[3] === "ms" ? 1000 : 1);
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
    const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
    const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
    return { requests, seconds, rps: requests / seconds, failures: non2xx + sockErrors };
  }
  const bin = createRequire(import.meta.url).resolve("autocannon/autocannon.js");
  const args = [bin, "-c", String(opts.connections), "-d", String(opts.seconds), "-m", spec.method, "-j"];
  for (const [k, v] of Object.entries(spec.headers)) args.push("-H", `${k}=${v}`);
  if (spec.body !== undefined) args.push("-b", spec.body);
  args.push(spec.url);
  const { stdout } = await run(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 });
  const r = JSON.parse(stdout) as { requests: { total: number }; duration: number; non2xx: number; errors: number };
  return {
    requests: r.requests.total,
    seconds: r.duration,
    rps: r.requests.total / r.duration,
    failures: r.non2xx + r.errors,
  };
}

export interface OpenLoopResult {
  ok: number;
  errors: number;
  statusErrors: number;
  latenciesMs: number[];
}

/** Sends `warmup + count` requests at a constant `rate` from a separate process. */
export function openLoop(
  spec: RequestSpec,
  opts: { rate: number; count: number; warmup: number; connections: number },
): Promise<OpenLoopResult> {
  return new Promise((resolve, reject) => {
    const benchDir = path.dirname(new URL(import.meta.url).pathname);
    const p = spawn(process.execPath, ["--import", "tsx", path.join(benchDir, "loadgen.ts"), JSON.stringify({ ...spec, ...opts })], {
      cwd: path.dirname(benchDir),
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    p.on("exit", (code) => {
      if (code === 0) resolve(JSON.parse(out) as OpenLoopResult);
      else reject(new Error(`load generator exited with ${code}`));
    });
  });
}
