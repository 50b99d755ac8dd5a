/**
 * `tollgate start --workers 2` as users run it (a child process, SQLite store): both workers
 * serve one project; an MCP session and a connect flow move freely between them (their state
 * is in the store, session ids are HMAC-bound); a killed worker is replaced while the other
 * serves; both write whole lines to one stdout under load; SIGTERM drains both. The test process opens a new connection for every request, and
 * the cluster hands connections out in turn, so consecutive requests reach different workers;
 * which worker served a request is read from the `worker` field of its access log line.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { Agent, fetch as undiciFetch, setGlobalDispatcher } from "undici";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { generateKey } from "../../src/store/crypto.js";
import { TestBrowser, startOAuthUpstream } from "../fixtures/oauth-upstream.js";
import { exitOf, outputOf, spawnCli, waitForLine } from "../helpers/cli.js";
import { writeProject } from "../helpers/harness.js";
import { connectUser, projectFiles, startIdentity, whoami, type Scenario } from "./upstream-oauth-kit.js";

// One connection per request (SDK client, browser, plain fetch): the cluster alternates workers.
setGlobalDispatcher(new Agent({ maxRequestsPerClient: 1 }));
globalThis.fetch = undiciFetch as unknown as typeof fetch;

interface AccessLine {
  worker: number;
  requestId: string;
  /** `method` on a plain access line, `httpMethod` on an MCP route's request event (its access line). */
  method?: string;
  httpMethod?: string;
  path: string;
  status: number;
  time: string;
}

const accessLines = (stdout: string): AccessLine[] =>
  stdout
    .split("\n")
    .filter((l) => l.includes('"msg":"request"'))
    .map((l) => JSON.parse(l) as AccessLine);

/** Waits until `done()` holds, for up to 15 s (each worker writes its buffered lines within a second). */
async function until(done: () => boolean): Promise<void> {
  for (const t = Date.now(); !done() && Date.now() - t < 15_000; ) await new Promise((r) => setTimeout(r, 100));
}

/** GET over a fresh connection; resolves with status and body. */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      })
      .on("error", reject);
  });
}

test("two workers: one project, sessions and connect flows across workers, replacement, drain on SIGTERM", async () => {
  const identity = await startIdentity();
  const upstream = await startOAuthUpstream();
  const files = projectFiles(identity.jwks.url, upstream.mcpUrl);
  const routes = JSON.parse(files["config/routes.oas.json"]!) as { paths: Record<string, unknown> };
  // `/pid` answers with the serving process; `/slow?n=…` holds its answer until a release file exists.
  routes.paths["/pid"] = { get: { operationId: "pid", "x-zuplo-route": { handler: { module: "$import(./modules/pid)", export: "pid" } } } };
  routes.paths["/slow"] = { get: { operationId: "slow", "x-zuplo-route": { handler: { module: "$import(./modules/pid)", export: "slow" } } } };
  const dir = await writeProject({
    ...files,
    "config/routes.oas.json": JSON.stringify(routes),
    "modules/pid.ts": `
      import fs from "node:fs";
      export function pid() { return new Response(String(process.pid)); }
      export function slow(req: Request) {
        const file = new URL(req.url).searchParams.get("release")!;
        const body = new ReadableStream({
          async start(c) {
            c.enqueue(new TextEncoder().encode(process.pid + " start\\n"));
            while (!fs.existsSync(file)) await new Promise((r) => setTimeout(r, 20));
            c.enqueue(new TextEncoder().encode("done\\n"));
            c.close();
          },
        });
        return new Response(body);
      }
    `,
  });
  const child = spawnCli(["start", "--project", dir, "--port", "0", "--workers", "2"], {
    TOLLGATE_STORE: `sqlite:${path.join(dir, "data.db")}`,
    TOLLGATE_ENCRYPTION_KEY: generateKey(),
    TOLLGATE_DEV_LOGIN: "1",
  });
  try {
    const [, url] = await waitForLine(child, /serving \d+ route\(s\) at (http:\/\/127\.0\.0\.1:\d+).* with 2 workers/, 120_000);
    const gatewayUrl = url!;

    // Both workers serve the one socket.
    const pids = new Set<string>();
    for (let i = 0; i < 4; i++) pids.add((await get(`${gatewayUrl}/pid`)).body);
    assert.equal(pids.size, 2, `two processes answered: ${[...pids].join(", ")}`);

    // A connect flow (state written by one worker, callback served by the next) and an MCP
    // session used through both workers.
    const scenario = { gw: { url: gatewayUrl } } as unknown as Scenario;
    const first = await connectUser(scenario, identity, "ada", new TestBrowser(), gatewayUrl);
    await first.close();
    let n = 0;
    const token = await identity.token("ada");
    const client = new Client({ name: "workers-client", version: "1.0.0" });
    const transport = new StreamableHTTPClientTransport(new URL(`${gatewayUrl}/mcp/notes`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
      fetch: (input, init) => {
        const headers = new Headers(init?.headers);
        headers.set("x-request-id", `session-${++n}`);
        return fetch(input, { ...init, headers });
      },
    });
    await client.connect(transport);
    const sid = transport.sessionId;
    assert.ok(sid, "a session was opened");
    for (let i = 0; i < 4; i++) assert.match(await whoami(client), /ada/);
    assert.equal(transport.sessionId, sid);
    await client.close();

    // Wait until every request is logged.
    const logged = () => accessLines(outputOf(child).stdout).filter((l) => l.requestId.startsWith("session-")).length;
    await until(() => logged() >= n);
    const lines = accessLines(outputOf(child).stdout);
    assert.equal(logged(), n, "every session request was logged");
    const session = lines.filter((l) => l.requestId.startsWith("session-") && (l.method ?? l.httpMethod) === "POST");
    assert.ok(session.every((l) => l.status === 200 || l.status === 202), JSON.stringify(session));
    assert.deepEqual(new Set(session.map((l) => l.worker)), new Set([1, 2]), "the session was used through both workers");
    const started = lines.filter((l) => l.path === "/__tollgate/auth/connections/notes/connect").at(-1);
    const completed = lines.filter((l) => l.path === "/__tollgate/auth/connections/notes/callback").at(-1);
    assert.ok(started && completed, "the connect flow's start and callback were logged");
    assert.equal(completed.status, 200, JSON.stringify(completed));
    // Which worker serves the callback depends on how many requests the walk makes on its
    // connection; the flow's state lives in the shared store either way.

    // Both workers write their lines to the one stdout pipe at once: under a burst of requests
    // every line still arrives whole (no write of one process lands inside another's line). The
    // pipe is not read during the burst, so it fills and the workers' writes meet a full pipe,
    // where a write larger than PIPE_BUF would go in part and the rest after another's.
    child.stdout!.pause();
    const burst = 3000;
    const tag = "x".repeat(100); // request ids are kept up to 128 characters
    let next = 0;
    const load = async () => {
      while (next < burst) {
        const id = `burst-${++next}-${tag}`;
        const r = await fetch(`${gatewayUrl}/pid`, { headers: { "x-request-id": id } });
        assert.equal(r.status, 200);
        await r.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 32 }, load));
    child.stdout!.resume();
    // (Counted without parsing: a line split by another process's write must reach the check below.)
    await until(() => outputOf(child).stdout.split("\n").filter((l) => l.includes('"requestId":"burst-')).length >= burst);
    const out = outputOf(child).stdout;
    // (The start line is the one plain-text line.)
    const broken = out.split("\n").slice(0, -1).filter((l) => !l.startsWith("Tollgate serving ")).filter((l) => {
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    assert.deepEqual(broken.map((l) => l.slice(0, 200)), [], "every line on stdout is one whole JSON object");
    const burstLines = accessLines(out).filter((l) => l.requestId.startsWith("burst-"));
    assert.equal(new Set(burstLines.map((l) => l.requestId)).size, burst, "every request of the burst was logged");
    assert.equal(burstLines.length, burst, "each request of the burst was logged once");
    assert.deepEqual(new Set(burstLines.map((l) => l.worker)), new Set([1, 2]), "both workers served the burst");

    // A killed worker: the other keeps serving, and a replacement starts.
    const victim = Number([...pids][0]);
    process.kill(victim, "SIGKILL");
    await waitForLine(child, /"msg":"worker exited; starting a replacement"/);
    const survivor = [...pids].find((p) => p !== String(victim))!;
    // Requests keep being answered, never by the dead worker (the replacement may already serve:
    // the primary's line above can reach stdout up to a second after the event).
    for (let i = 0; i < 3; i++) {
      const r = await get(`${gatewayUrl}/pid`);
      assert.equal(r.status, 200);
      assert.notEqual(r.body, String(victim));
    }
    await waitForLine(child, /"msg":"replacement worker serving"/, 120_000);
    const after = new Set<string>();
    for (let i = 0; i < 10 && after.size < 2; i++) {
      const r = await get(`${gatewayUrl}/pid`);
      assert.equal(r.status, 200);
      after.add(r.body);
    }
    assert.ok(after.has(survivor) && !after.has(String(victim)), [...after].join(", "));
    assert.equal(after.size, 2, "a replacement worker serves next to the survivor");

    // SIGTERM while each worker has a request in flight: both finish, then everything exits 0.
    const release = path.join(dir, "release");
    const slow = () =>
      new Promise<{ first: Promise<string>; all: Promise<string> }>((resolve, reject) => {
        http
          .get(`${gatewayUrl}/slow?release=${encodeURIComponent(release)}`, { agent: false }, (res) => {
            let body = "";
            let firstChunk!: (s: string) => void;
            const first = new Promise<string>((r) => (firstChunk = r));
            const all = new Promise<string>((r, j) => {
              res.on("end", () => r(body));
              res.on("error", j);
            });
            res.on("data", (c: Buffer) => {
              body += c.toString();
              firstChunk(body);
            });
            resolve({ first, all });
          })
          .on("error", reject);
      });
    const inFlight = [await slow(), await slow()];
    const holders = new Set((await Promise.all(inFlight.map((r) => r.first))).map((b) => b.split(" ")[0]));
    assert.equal(holders.size, 2, "one request in flight in each worker");
    child.kill("SIGTERM");
    await waitForLine(child, /"worker":"primary"[^\n]*"msg":"shutting down"/);
    await fs.writeFile(release, "");
    for (const r of inFlight) assert.match(await r.all, /start\ndone\n$/);
    assert.equal(await exitOf(child), 0, outputOf(child).stderr);
    assert.equal(outputOf(child).stdout.match(/"msg":"stopped"/g)?.length, 3, "both workers and the primary stopped");
  } finally {
    child.kill("SIGKILL");
    await upstream.close();
    await identity.close();
  }
});

test("--workers 2 with the in-memory store is refused: its state would split between processes", async () => {
  const { runCli, ROOT } = await import("../helpers/cli.js");
  const r = await runCli(["start", "--project", path.join(ROOT, "test/fixtures/projects/good"), "--port", "0", "--workers", "2"], {
    TOLLGATE_STORE: "memory:",
    TOLLGATE_ENCRYPTION_KEY: generateKey(),
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--workers 2: TOLLGATE_STORE=memory: keeps sessions, flow state and counters inside one process; use a sqlite: or postgres:\/\/ store, or --workers 1\./);
});
