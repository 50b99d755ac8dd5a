/**
 * Starting and stopping what the benchmark measures, each as its own process: the minimal
 * upstream, nginx (from the operating system) and the Tollgate CLI. Also the JWKS server and the
 * signed JWT the gateway's auth policy verifies, and the set-up the benchmark scripts share
 * ({@link startBenchFixture}).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { once } from "node:events";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { WebSocket } from "undici";
import { generateKey } from "../src/store/crypto.js";
import { BENCH_AUDIENCE } from "./load.js";
import { writeBenchProject } from "./project.js";

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** Tail of the process's output, for error reports. */
  stderr: string[];
  /**
   * Runs a full garbage collection in the (Node) process through its inspector — only for
   * processes started with `--inspect=127.0.0.1:0` ({@link INSPECT}); resolves false otherwise.
   */
  collectGarbage(): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * Node flags the gateway runs with, as the container image (`Dockerfile`) and `npm start` start
 * it: a larger young generation (docs/performance.md, "Node flags").
 */
export const GATEWAY_NODE_FLAGS = ["--max-semi-space-size=32"];

/** Node option that lets {@link Child.collectGarbage} reach the process (any free port). */
export const INSPECT = "--inspect=127.0.0.1:0";

/** One inspector command over the DevTools protocol; resolves when the process answered it. */
function inspectorCall(wsUrl: string, method: string): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      ws.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 10_000);
    ws.addEventListener("open", () => ws.send(JSON.stringify({ id: 1, method })));
    ws.addEventListener("message", (e) => {
      if ((JSON.parse(String(e.data)) as { id?: number }).id === 1) done(true);
    });
    ws.addEventListener("error", () => done(false));
  });
}

function track(name: string, proc: ChildProcess): Child {
  const stderr: string[] = [];
  let inspector: string | undefined;
  const keep = (d: string) => {
    inspector ??= /Debugger listening on (ws:\/\/\S+)/.exec(d)?.[1];
    stderr.push(d);
    if (stderr.length > 200) stderr.shift();
  };
  proc.stderr?.setEncoding("utf8").on("data", keep);
  return {
    name,
    proc,
    pid: proc.pid!,
    stderr,
    async collectGarbage() {
      return inspector ? inspectorCall(inspector, "HeapProfiler.collectGarbage") : false;
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = once(proc, "exit");
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A free TCP port on the loopback interface (released before returning). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as net.AddressInfo).port;
  srv.close();
  await once(srv, "close");
  return port;
}

/** Polls `url` until it answers (any HTTP status below 500) or `ms` pass. */
export async function waitForHttp(url: string, child: Child, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.proc.exitCode !== null) {
      throw new Error(`${child.name} exited with ${child.proc.exitCode}:\n${child.stderr.join("")}`);
    }
    const status = await new Promise<number>((resolve) => {
      http
        .get(url, { agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on("error", () => resolve(0));
    });
    if (status > 0 && status < 500) return;
    if (Date.now() > deadline) throw new Error(`${child.name} did not answer ${url} within ${ms} ms:\n${child.stderr.join("")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const benchDir = path.dirname(new URL(import.meta.url).pathname);
export const repoRoot = path.resolve(benchDir, "..");

/**
 * Checks commit `ref` out at `dir` as a git worktree of this checkout that borrows its
 * node_modules (so both run the same dependencies); returns what removes it again.
 */
export function checkoutWorktree(ref: string, dir: string): () => void {
  execFileSync("git", ["worktree", "add", "--detach", dir, ref], { cwd: repoRoot, stdio: "ignore" });
  fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(dir, "node_modules"));
  return () => execFileSync("git", ["worktree", "remove", "--force", dir], { cwd: repoRoot, stdio: "ignore" });
}

/** Starts the minimal upstream (`bench/upstream.ts`) and returns its port. */
export async function startUpstream(): Promise<{ child: Child; port: number }> {
  const proc = spawn(process.execPath, ["--import", "tsx", path.join(benchDir, "upstream.ts")], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const child = track("upstream", proc);
  proc.stdout!.setEncoding("utf8");
  const [line] = (await once(proc.stdout!, "data")) as [string];
  return { child, port: (JSON.parse(line) as { port: number }).port };
}

/**
 * Starts the bare Node proxy (`bench/bare-proxy.ts`) in front of the upstream, with this Node
 * binary or `bin` (another Node line's), in one process or `workers` cluster workers.
 */
export async function startBareProxy(upstreamPort: number, nodeArgs: string[] = [], bin = process.execPath, workers = 1): Promise<{ child: Child; port: number }> {
  const proc = spawn(bin, [...nodeArgs, "--import", "tsx", path.join(benchDir, "bare-proxy.ts"), `http://127.0.0.1:${upstreamPort}`, String(workers)], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const child = track("bare-node", proc);
  proc.stdout!.setEncoding("utf8");
  const [line] = (await once(proc.stdout!, "data")) as [string];
  return { child, port: (JSON.parse(line) as { port: number }).port };
}

/**
 * Starts `bench/audit-pair.ts`: the default configuration and the same with the audit trail off,
 * two gateways in one process on `projectDir` (memory store unless `env` says otherwise), with
 * this Node binary or `bin`.
 */
export async function startAuditPair(projectDir: string, env: Record<string, string>, bin = process.execPath): Promise<{ child: Child; on: number; off: number }> {
  const proc = spawn(bin, [...GATEWAY_NODE_FLAGS, "--import", "tsx", path.join(benchDir, "audit-pair.ts"), projectDir], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, TOLLGATE_STORE: "memory:", ...env },
  });
  const child = track("audit-pair", proc);
  // The gateways' log lines: drained as a process manager would.
  proc.stdout!.resume();
  const deadline = Date.now() + 120_000;
  for (;;) {
    const ports = /\{"on":(\d+),"off":(\d+)\}/.exec(child.stderr.join(""));
    if (ports) return { child, on: Number(ports[1]), off: Number(ports[2]) };
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`audit-pair did not start:\n${child.stderr.join("")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The nginx binary, or undefined with the reason. */
export function findNginx(): string | undefined {
  for (const p of ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]) if (fs.existsSync(p)) return p;
  try {
    return execFileSync("sh", ["-c", "command -v nginx"], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts nginx in the foreground as a reverse proxy to the upstream, configured the way one would
 * for MCP: one worker (like the single-threaded gateway), HTTP/1.1 keep-alive pool to the
 * upstream, no buffering (SSE), long read timeout, no access log.
 */
export async function startNginx(bin: string, tmpDir: string, upstreamPort: number): Promise<{ child: Child; port: number }> {
  const port = await freePort();
  const dir = path.join(tmpDir, "nginx");
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const conf = `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream mcp { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://mcp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
    }
  }
}
`;
  const file = path.join(dir, "nginx.conf");
  fs.writeFileSync(file, conf);
  const proc = spawn(bin, ["-p", dir, "-c", file, "-g", "daemon off;"], { stdio: ["ignore", "ignore", "pipe"] });
  const child = track("nginx", proc);
  await waitForHttp(`http://127.0.0.1:${port}/stats`, child);
  return { child, port };
}

/** The JWKS server of {@link startIdentity} and the token it vouches for. */
export interface Identity {
  server: http.Server;
  issuer: string;
  jwksUrl: string;
  token: string;
}

/** An RS256 key pair, a JWKS server on loopback, and a token for the benchmark's user. */
export async function startIdentity(audience: string): Promise<Identity> {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "bench", alg: "RS256", use: "sig" };
  const body = JSON.stringify({ keys: [jwk] });
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" }).end(body);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const token = await new SignJWT({ scope: "mcp", email: "bench@example.com" })
    .setProtectedHeader({ alg: "RS256", kid: "bench" })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject("bench-user")
    .setIssuedAt()
    .setExpirationTime("2h")
    .sign(privateKey);
  return { server, issuer, jwksUrl: `${issuer}/.well-known/jwks.json`, token };
}

/** What every benchmark script runs the gateway against ({@link startBenchFixture}). */
export interface BenchFixture {
  /** JWKS server and the benchmark user's token (audience `BENCH_AUDIENCE`). */
  identity: Identity;
  /** The minimal upstream (`bench/upstream.ts`). */
  upstream: { child: Child; port: number };
  /** The upstream's MCP endpoint, which the bench project's routes rewrite to. */
  upstreamUrl: string;
  /** The bench project (`bench/project.ts`), written to `project` under the caller's directory. */
  projectDir: string;
  /** A fresh `TOLLGATE_ENCRYPTION_KEY` for the gateways run on the project. */
  key: string;
  /**
   * Stops the upstream (nothing to do when the caller has stopped it already, e.g. among its own
   * processes in the order it wants) and closes the JWKS server.
   */
  stop(): Promise<void>;
}

/**
 * The set-up the benchmark scripts share: the identity provider, the upstream, the bench project
 * in `tmpDir/project` pointing at both (with the `/mcp-tx` route when `tokenExchange`), and an
 * encryption key. If a step fails, what was already started is stopped again.
 */
export async function startBenchFixture(o: { tmpDir: string; tokenExchange: boolean }): Promise<BenchFixture> {
  const identity = await startIdentity(BENCH_AUDIENCE);
  let upstream: { child: Child; port: number } | undefined;
  try {
    upstream = await startUpstream();
    const upstreamUrl = `http://127.0.0.1:${upstream.port}/mcp`;
    const projectDir = path.join(o.tmpDir, "project");
    writeBenchProject(projectDir, { upstreamUrl, issuer: identity.issuer, audience: BENCH_AUDIENCE, jwksUrl: identity.jwksUrl, tokenExchange: o.tokenExchange });
    const key = generateKey();
    const up = upstream;
    return {
      identity,
      upstream: up,
      upstreamUrl,
      projectDir,
      key,
      async stop() {
        await up.child.stop();
        identity.server.close();
      },
    };
  } catch (err) {
    await upstream?.child.stop();
    identity.server.close();
    throw err;
  }
}

/**
 * Starts `node bin/tollgate.js start` (of this checkout, or of `root`) on a project directory, in
 * the default configuration (log level `info`: one access line per request) unless `env` says
 * otherwise. The store is `memory:` unless `env.TOLLGATE_STORE` says otherwise; with it the
 * gateway runs one process. `args` are more CLI arguments (e.g. `--workers 2`); `bin` is the Node
 * binary (this one by default; another line's runs the `memory:` store, whose code is all
 * JavaScript, without a native module built for it).
 */
export async function startTollgate(
  projectDir: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
  root = repoRoot,
  args: string[] = [],
  bin = process.execPath,
): Promise<{ child: Child; port: number }> {
  const port = await freePort();
  const proc = spawn(
    bin,
    [...GATEWAY_NODE_FLAGS, ...nodeArgs, path.join(root, "bin", "tollgate.js"), "start", "--project", projectDir, "--port", String(port), "--host", "127.0.0.1", ...args],
    {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, TOLLGATE_STORE: "memory:", ...env },
    },
  );
  const child = track("tollgate", proc);
  // Logs go to stdout (a pipe, as under a process manager); keep the tail for error reports.
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => {
    child.stderr.push(d);
    if (child.stderr.length > 200) child.stderr.shift();
  });
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, child, 120_000);
  if (args.includes("--workers")) {
    // /healthz answers as soon as the first worker serves: wait for the line saying all do.
    const deadline = Date.now() + 120_000;
    while (!child.stderr.join("").includes(" workers\n")) {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`${child.name}: workers did not start:\n${child.stderr.join("")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { child, port };
}
