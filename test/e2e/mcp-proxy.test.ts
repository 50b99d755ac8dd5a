/**
 * McpProxyHandler end to end with the official SDK on both sides: Streamable HTTP sessions,
 * SSE streaming of progress, the GET stream, Last-Event-ID resumption, session end, and
 * 2026-07-28-style stateless requests.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { startGateway, type RunningGateway } from "../helpers/harness.js";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { sessionCapabilities } from "../../src/mcp/messages.js";
import { MCP_POST_HEADERS, proxyProject, rawRequest, rpc } from "./mcp-proxy-helpers.js";

let stateful: McpTestServer;
let stateless: McpTestServer;
let gw: RunningGateway;

before(async () => {
  stateful = await startMcpTestServer({ mode: "stateful" });
  stateless = await startMcpTestServer({ mode: "stateless" });
  const dir = await proxyProject([
    { path: "/mcp", options: { rewritePattern: stateful.url } },
    { path: "/stateless", options: { rewritePattern: stateless.url } },
  ]);
  gw = await startGateway({ projectDir: dir });
});

after(async () => {
  await gw?.close();
  await stateful?.close();
  await stateless?.close();
});

async function connect(): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: "proxy-e2e", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), {
    reconnectionOptions: { initialReconnectionDelay: 10, maxReconnectionDelay: 50, reconnectionDelayGrowFactor: 1, maxRetries: 5 },
  });
  await client.connect(transport);
  return { client, transport };
}

describe("sessionful Streamable HTTP through the gateway", () => {
  test("initialize, tools/list and tools/call; the session id and capabilities are the upstream's", async () => {
    const { client, transport } = await connect();
    try {
      assert.ok(transport.sessionId);
      assert.ok(stateful.sessionIds().includes(transport.sessionId), "session id comes from the upstream");
      const remembered = sessionCapabilities.get(transport.sessionId);
      assert.equal(remembered?.version, "2025-11-25");
      const tools = await client.listTools();
      assert.deepEqual(tools.tools.map((t) => t.name).sort(), ["echo", "notify", "sleep", "slow_progress"]);
      const echoed = await client.callTool({ name: "echo", arguments: { text: "hello through the gateway" } });
      assert.deepEqual(echoed.content, [{ type: "text", text: "hello through the gateway" }]);
      const call = stateful.requests.find((r) => r.body.includes('"hello through the gateway"'));
      assert.equal(call?.headers["mcp-session-id"], transport.sessionId);
      assert.equal(call?.headers["mcp-protocol-version"], "2025-11-25");
    } finally {
      await client.close();
    }
  });

  test("progress notifications stream over SSE before the result", async () => {
    const { client } = await connect();
    try {
      const seen: number[] = [];
      let finished = false;
      const result = await client.callTool({ name: "slow_progress", arguments: { steps: 3, hold: true } }, undefined, {
        onprogress: (p) => {
          assert.equal(finished, false, "progress after the result");
          seen.push(p.progress);
          // The upstream holds the call after the first notification: it can only get here if
          // the gateway streamed that notification instead of buffering the response.
          if (p.progress === 1) stateful.release();
        },
      });
      finished = true;
      assert.deepEqual(seen, [1, 2, 3]);
      assert.deepEqual(result.content, [{ type: "text", text: "done after 3 steps" }]);
    } finally {
      await client.close();
    }
  });

  test("the GET stream carries server notifications", async () => {
    const { client, transport } = await connect();
    try {
      const get = await stateful.waitForRequest((r) => r.method === "GET" && r.headers["mcp-session-id"] === transport.sessionId);
      assert.equal(await get.responded, 200);
      assert.match(String(get.headers.accept), /text\/event-stream/);
      const changed = new Promise<void>((resolve) => client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()));
      await client.callTool({ name: "notify", arguments: {} });
      await changed;
    } finally {
      await client.close();
    }
  });

  test("a dropped SSE stream resumes with Last-Event-ID through the gateway", async () => {
    const { client, transport } = await connect();
    try {
      const seen: number[] = [];
      const result = await client.callTool({ name: "slow_progress", arguments: { steps: 3, dropStreamAfter: 1 } }, undefined, {
        onprogress: (p) => void seen.push(p.progress),
      });
      assert.deepEqual(result.content, [{ type: "text", text: "done after 3 steps" }]);
      assert.deepEqual(seen, [1, 2, 3]);
      const resumed = stateful.requests.find(
        (r) => r.method === "GET" && r.headers["mcp-session-id"] === transport.sessionId && r.headers["last-event-id"],
      );
      assert.ok(resumed, "the client resumed with a GET carrying Last-Event-ID");
    } finally {
      await client.close();
    }
  });

  test("DELETE ends the session; later requests get the upstream's 404", async () => {
    const { client, transport } = await connect();
    const sid = transport.sessionId!;
    assert.ok(sessionCapabilities.get(sid));
    await transport.terminateSession();
    assert.equal(stateful.sessionIds().includes(sid), false);
    assert.equal(sessionCapabilities.get(sid), undefined);
    const after = await rawRequest(`${gw.url}/mcp`, {
      headers: { ...MCP_POST_HEADERS, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" },
      body: rpc("tools/list"),
    });
    assert.equal(after.status, 404);
    assert.deepEqual(JSON.parse(after.body), { jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } });
    await client.close();
  });

  test("a notification is answered 202 with no body", async () => {
    const { client, transport } = await connect();
    try {
      const res = await rawRequest(`${gw.url}/mcp`, {
        headers: { ...MCP_POST_HEADERS, "mcp-session-id": transport.sessionId!, "mcp-protocol-version": "2025-11-25" },
        body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/roots/list_changed" }),
      });
      assert.equal(res.status, 202);
      assert.equal(res.body, "");
      // Complete at once, not a chunked body still to end: SDK clients cancel a 202's body
      // immediately, and cancelling an unfinished one costs them the keep-alive connection.
      assert.equal(res.headers["content-length"], "0");
      assert.equal(res.headers["transfer-encoding"], undefined);
    } finally {
      await client.close();
    }
  });
});

describe("stateless requests", () => {
  const meta = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": { elicitation: { url: {} } },
  };

  test("a 2026-07-28 request with _meta and Mcp-Method/Mcp-Name headers passes through", async () => {
    const body = rpc("tools/call", { name: "echo", arguments: { text: "stateless hi" }, _meta: meta }, 7);
    const res = await rawRequest(`${gw.url}/stateless`, {
      headers: { ...MCP_POST_HEADERS, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "echo" },
      body,
    });
    assert.equal(res.status, 200);
    assert.match(String(res.headers["content-type"]), /application\/json/);
    assert.deepEqual(JSON.parse(res.body), {
      jsonrpc: "2.0",
      id: 7,
      result: { content: [{ type: "text", text: "stateless hi" }] },
    });
    const seen = await stateless.waitForRequest((r) => r.body.includes("stateless hi"));
    assert.equal(seen.headers["mcp-method"], "tools/call");
    assert.equal(seen.headers["mcp-name"], "echo");
    assert.equal(seen.headers["mcp-protocol-version"], "2026-07-28");
    assert.equal(seen.headers["mcp-session-id"], undefined);
    assert.equal(seen.body, body, "the body reaches the upstream byte for byte");
  });

  test("subscriptions/listen goes to the upstream (which answers it as it likes)", async () => {
    const res = await rawRequest(`${gw.url}/stateless`, {
      headers: { ...MCP_POST_HEADERS, "mcp-protocol-version": "2026-07-28", "mcp-method": "subscriptions/listen" },
      body: rpc("subscriptions/listen", { _meta: meta }, "listen-1"),
    });
    const seen = await stateless.waitForRequest((r) => r.headers["mcp-method"] === "subscriptions/listen");
    assert.match(seen.body, /"listen-1"/);
    // This SDK revision does not know the method: its JSON-RPC error comes back unchanged.
    assert.equal(res.status, 200);
    assert.equal((JSON.parse(res.body) as { error: { code: number } }).error.code, -32601);
  });
});
