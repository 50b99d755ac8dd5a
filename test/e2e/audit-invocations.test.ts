/**
 * When `mcp_capability_invoked` is written: at `info` while the call's answer streams (SSE: the
 * call is in flight for as long as the stream runs), at `debug` when the answer comes whole (its
 * completion, written as soon as the body has passed, carries every field of the invocation).
 * Each call has its completion and its request event either way.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { logsWhen, startGateway, type RunningGateway } from "../helpers/harness.js";
import { initializeBody, MCP_POST_HEADERS, proxyProject, rpc } from "./mcp-proxy-helpers.js";

let json: McpTestServer;
let sse: McpTestServer;
let dir: string;

before(async () => {
  json = await startMcpTestServer({ mode: "stateless" });
  sse = await startMcpTestServer({ mode: "stateful" });
  dir = await proxyProject([
    { path: "/json", options: { rewritePattern: json.url } },
    { path: "/sse", options: { rewritePattern: sse.url } },
  ]);
});
after(async () => {
  await json?.close();
  await sse?.close();
});

type Line = Record<string, unknown>;

/** The audit lines of one request, once its request event is written. */
async function linesOf(gw: RunningGateway, requestId: string, last = ["mcp_request_accepted"]): Promise<Line[]> {
  const mine = (lines: Line[]) => lines.filter((l) => l.requestId === requestId && typeof l.event === "string");
  return mine(await logsWhen(gw, 0, (lines) => mine(lines).some((l) => last.includes(l.event as string))));
}

async function call(gw: RunningGateway, path: string, requestId: string, session?: string): Promise<void> {
  const res = await fetch(`${gw.url}${path}`, {
    method: "POST",
    headers: { ...MCP_POST_HEADERS, "mcp-protocol-version": "2025-11-25", "x-request-id": requestId, ...(session ? { "mcp-session-id": session } : {}) },
    body: rpc("tools/call", { name: "echo", arguments: { text: "not-for-the-log" } }, 7),
  });
  assert.equal(res.status, 200);
  assert.match(await res.text(), /not-for-the-log/);
}

/** Opens a session on the stateful (SSE-answering) upstream through the gateway. */
async function session(gw: RunningGateway): Promise<string> {
  const res = await fetch(`${gw.url}/sse`, { method: "POST", headers: MCP_POST_HEADERS, body: initializeBody() });
  assert.equal(res.status, 200);
  await res.text();
  const sid = res.headers.get("mcp-session-id");
  assert.ok(sid);
  const note = await fetch(`${gw.url}/sse`, {
    method: "POST",
    headers: { ...MCP_POST_HEADERS, "mcp-protocol-version": "2025-11-25", "mcp-session-id": sid },
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  assert.equal(note.status, 202);
  return sid;
}

/** Runs `fn` against a gateway logging at `level`, closed afterwards. */
async function withGateway(level: "info" | "debug", fn: (gw: RunningGateway) => Promise<void>): Promise<void> {
  const gw = await startGateway({ projectDir: dir, env: { TOLLGATE_LOG_LEVEL: level } });
  try {
    await fn(gw);
  } finally {
    await gw.close();
  }
}

const shape = (lines: Line[]) => lines.map((l) => [l.event, l.level, l.capabilityName, l.outcome]);

test("at info: a call answered in one JSON body has its completion and request event, no invocation line", async () => {
  await withGateway("info", async (gw) => {
    await call(gw, "/json", "json-1");
    assert.deepEqual(shape(await linesOf(gw, "json-1")), [
      ["mcp_capability_completed", 30, "echo", "success"],
      ["mcp_request_accepted", 30, "echo", "success"],
    ]);
    assert.ok(!gw.logs.join("\n").includes("not-for-the-log"), "tool arguments and results are never logged");
  });
});

test("a method named like an inherited object member is no capability call", async () => {
  await withGateway("debug", async (gw) => {
    for (const [i, method] of ["constructor", "toString", "tools/call"].entries()) {
      const res = await fetch(`${gw.url}/json`, {
        method: "POST",
        headers: { ...MCP_POST_HEADERS, "mcp-protocol-version": "2025-11-25", "x-request-id": `m-${i}` },
        body: rpc(method, { name: "echo", arguments: { text: "x" } }, 3),
      });
      await res.text();
      const lines = await linesOf(gw, `m-${i}`);
      const calls = lines.filter((l) => l.event !== "mcp_request_accepted");
      if (method === "tools/call") assert.deepEqual(calls.map((l) => l.event), ["mcp_capability_invoked", "mcp_capability_completed"], "the control");
      else assert.deepEqual(calls, [], `${method}: only the request event`);
      assert.equal(lines.at(-1)?.mcpMethod, method);
    }
  });
});

test("at info: a call answered as an SSE stream is logged as invoked when the stream starts", async () => {
  await withGateway("info", async (gw) => {
    const sid = await session(gw);
    await call(gw, "/sse", "sse-1", sid);
    const lines = await linesOf(gw, "sse-1");
    assert.deepEqual(shape(lines), [
      ["mcp_capability_invoked", 30, "echo", undefined],
      ["mcp_capability_completed", 30, "echo", "success"],
      ["mcp_request_accepted", 30, "echo", "success"],
    ]);
  });
});

test("at debug: the invocation of a call answered in one JSON body is written too, at debug", async () => {
  await withGateway("debug", async (gw) => {
    await call(gw, "/json", "json-2");
    assert.deepEqual(shape(await linesOf(gw, "json-2")), [
      ["mcp_capability_invoked", 20, "echo", undefined],
      ["mcp_capability_completed", 30, "echo", "success"],
      ["mcp_request_accepted", 30, "echo", "success"],
    ]);
  });
});

test("a client that leaves while its call is still running: the call and the request are cancelled, by the client", async () => {
  await withGateway("info", async (gw) => {
    const sid = await session(gw);
    const abort = new AbortController();
    const res = fetch(`${gw.url}/sse`, {
      method: "POST",
      headers: { ...MCP_POST_HEADERS, "mcp-protocol-version": "2025-11-25", "x-request-id": "gone-1", "mcp-session-id": sid },
      body: rpc("tools/call", { name: "sleep", arguments: { ms: 3000 } }, 8),
      signal: abort.signal,
    }).then((r) => r.text());
    // Once the upstream has the call, leave.
    await sse.waitForRequest((r) => String(r.body ?? "").includes('"sleep"'));
    abort.abort();
    await res.catch(() => undefined);
    const lines = await linesOf(gw, "gone-1", ["mcp_request_accepted", "mcp_request_rejected"]);
    const completed = lines.find((l) => l.event === "mcp_capability_completed");
    const request = lines.find((l) => l.event === "mcp_request_accepted" || l.event === "mcp_request_rejected");
    assert.deepEqual([completed?.capabilityName, completed?.outcome, completed?.reasonCode, completed?.failureOrigin], ["sleep", "cancelled", "client_closed_request", "client"]);
    assert.deepEqual([request?.outcome, request?.failureOrigin], ["cancelled", "client"]);
  });
});
