/**
 * JSON-RPC batch bounds (default 100 messages, 1 MiB): a batch beyond them gets one JSON-RPC
 * -32600 error with HTTP 413 and nothing else — no answer per message from the gateway
 * (connect-required, filtered calls) and nothing forwarded. Reproduces, scaled down, a signed-in
 * user without an upstream grant posting thousands of `tools/call` messages in one batch (which
 * used to get one connect-required answer per message, ~700 bytes each).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startGateway, type RunningGateway } from "../helpers/harness.js";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { MCP_POST_HEADERS, proxyProject, rawRequest, type RawResponse } from "./mcp-proxy-helpers.js";
import { startIdentity, startScenario, type Identity, type Scenario } from "./upstream-oauth-kit.js";

const MAX_MESSAGES = 100;
const MAX_BYTES = 1024 * 1024;

let identity: Identity;
let scenario: Scenario;
let upstream: McpTestServer;
let proxy: RunningGateway;

before(async () => {
  identity = await startIdentity();
  scenario = await startScenario(identity, {});
  upstream = await startMcpTestServer({ mode: "stateless" });
  const filter = {
    name: "filter",
    policyType: "mcp-capability-filter-inbound",
    handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: "McpCapabilityFilterInboundPolicy", options: { tools: ["echo"] } },
  };
  const dir = await proxyProject(
    [
      { path: "/plain", options: { rewritePattern: upstream.url } },
      { path: "/filtered", options: { rewritePattern: upstream.url }, inbound: ["filter"] },
    ],
    [filter],
  );
  proxy = await startGateway({ projectDir: dir });
});

after(async () => {
  await proxy?.close();
  await upstream?.close();
  await scenario?.close();
  await identity?.close();
});

/** A batch of `n` tools/call requests (`pad` characters of argument each). */
function batch(n: number, tool = "echo", pad = 0): string {
  const text = "x".repeat(pad);
  return JSON.stringify(Array.from({ length: n }, (_, i) => ({ jsonrpc: "2.0", id: i + 1, method: "tools/call", params: { name: tool, arguments: { text } } })));
}

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return rawRequest(url, { headers: { ...MCP_POST_HEADERS, "mcp-protocol-version": "2025-03-26", ...headers }, body });
}

function assertTooLarge(res: RawResponse, names: RegExp): void {
  assert.equal(res.status, 413);
  assert.equal(res.headers["content-type"], "application/json");
  const msg = JSON.parse(res.body) as { jsonrpc: string; id: unknown; error: { code: number; message: string; data: { code: string } } };
  assert.equal(msg.jsonrpc, "2.0");
  assert.equal(msg.id, null);
  assert.equal(msg.error.code, -32600);
  assert.equal(msg.error.data.code, "batch_too_large");
  assert.match(msg.error.message, names);
  assert.ok(res.body.length < 1024, `one small error, got ${res.body.length} bytes`);
}

describe("JSON-RPC batch bounds", () => {
  test("no grant: a 6,000-message batch gets one 413 -32600 instead of 6,000 connect-required answers", async () => {
    const bearer = `Bearer ${await identity.token("alice")}`;
    const body = batch(6_000);
    assert.ok(body.length < MAX_BYTES, "under the byte bound: the message count is what trips");
    const res = await post(`${scenario.gw.url}/mcp/notes`, body, { authorization: bearer });
    assertTooLarge(res, /6000 messages, at most 100 per batch/);
  });

  test("no grant: a batch at the bound gets one connect-required answer per request, bounded in size", async () => {
    const bearer = `Bearer ${await identity.token("alice")}`;
    const res = await post(`${scenario.gw.url}/mcp/notes`, batch(MAX_MESSAGES), { authorization: bearer });
    assert.equal(res.status, 200);
    const answers = JSON.parse(res.body) as Array<{ id: number; error: { code: number } }>;
    assert.equal(answers.length, MAX_MESSAGES);
    assert.ok(answers.every((a) => a.error.code === -32042));
    // Each answer is a fixed-size message plus the echoed id: the whole stays far below 100 × 4 KiB.
    assert.ok(res.body.length < MAX_MESSAGES * 4096, `answer of ${res.body.length} bytes`);
  });

  test("a batch over 1 MiB is refused before it is parsed or forwarded", async () => {
    const from = upstream.requests.length;
    const body = batch(10, "echo", 110_000);
    assert.ok(body.length > MAX_BYTES);
    assertTooLarge(await post(`${proxy.url}/plain`, body), /at most 1048576 bytes per batch/);
    assert.equal(upstream.requests.length, from, "nothing reached the upstream");
  });

  test("a route with no MCP policy still holds batches to the bound; at the bound they are forwarded", async () => {
    const from = upstream.requests.length;
    assertTooLarge(await post(`${proxy.url}/plain`, batch(MAX_MESSAGES + 1)), /101 messages, at most 100/);
    assert.equal(upstream.requests.length, from, "nothing reached the upstream");
    await post(`${proxy.url}/plain`, batch(MAX_MESSAGES));
    assert.equal(upstream.requests.length, from + 1);
    assert.equal((JSON.parse(upstream.requests[from]!.body) as unknown[]).length, MAX_MESSAGES);
  });

  test("the capability filter answers no refused call of a batch over the bound", async () => {
    const from = upstream.requests.length;
    assertTooLarge(await post(`${proxy.url}/filtered`, batch(MAX_MESSAGES + 1, "hidden")), /101 messages/);
    assert.equal(upstream.requests.length, from);
    const res = await post(`${proxy.url}/filtered`, batch(3, "hidden"));
    assert.equal(res.status, 200);
    assert.equal((JSON.parse(res.body) as unknown[]).length, 3, "below the bound each hidden call gets its -32601");
  });

  test("single messages are not batches, whatever their size below the body limit", async () => {
    const from = upstream.requests.length;
    const one = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { text: "y".repeat(MAX_BYTES + 10) } } });
    const res = await post(`${proxy.url}/plain`, one);
    assert.notEqual(res.status, 413);
    assert.equal(upstream.requests.length, from + 1);
  });
});
