import { test } from "node:test";
import assert from "node:assert/strict";
import { GatewayError } from "../errors.js";
import { GatewayRequest, type GatewayContext } from "../pipeline/types.js";
import { isBatchBody, mcpRequestInfo, parseMcpRequestInfo } from "./messages.js";

const bytes = (s: string) => new TextEncoder().encode(s);

test("isBatchBody: a JSON array after optional whitespace", () => {
  assert.equal(isBatchBody(bytes("[{}]")), true);
  assert.equal(isBatchBody(bytes(" \r\n\t[]")), true);
  assert.equal(isBatchBody(bytes('{"a":[1]}')), false);
  assert.equal(isBatchBody(bytes("")), false);
  assert.equal(isBatchBody(bytes("  ")), false);
});

/** A context that carries only what the parser reads: the settings' batch limits. */
function limits(maxBatchMessages: number, maxBatchBytes: number): GatewayContext {
  return { custom: {}, services: { settings: { maxBatchMessages, maxBatchBytes } } } as unknown as GatewayContext;
}

const post = (body: string) => new GatewayRequest("http://gw.test/mcp", { method: "POST", body });
const call = (id: number) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "echo" } });

test("mcpRequestInfo holds batches to the configured limits", async () => {
  const three = JSON.stringify([call(1), call(2), call(3)]);
  const info = await mcpRequestInfo(post(three), limits(3, 1000));
  assert.equal(info.batch, true);
  assert.equal(info.messages.length, 3);

  await assert.rejects(mcpRequestInfo(post(three), limits(2, 1000)), (err: unknown) => {
    assert.ok(err instanceof GatewayError);
    assert.equal(err.code, "batch_too_large");
    assert.equal(err.status, 413);
    assert.equal(err.rpcCode, -32600);
    assert.equal(err.rpcStatus, 413);
    assert.match(err.message, /3 messages, at most 2 per batch/);
    return true;
  });
  // Over the byte bound: refused before parsing, so even invalid JSON is refused the same way.
  await assert.rejects(mcpRequestInfo(post(`[${" ".repeat(2000)}`), limits(3, 1000)), /at most 1000 bytes per batch/);
  // A single message of any size is not a batch; invalid JSON stays the upstream's to reject.
  assert.equal((await mcpRequestInfo(post(JSON.stringify(call(1)) + " ".repeat(5000)), limits(1, 10))).batch, false);
  assert.equal((await mcpRequestInfo(post("[not json"), limits(1, 1000))).parsed, false);
});

test("a summary of a plain request: the same facts as a full parse, and a full parse when one is asked for", async () => {
  const body = JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "echo", arguments: { text: "hi" } } });
  const withVersion = new GatewayRequest("http://gw.test/mcp", { method: "POST", body, headers: { "mcp-protocol-version": "2025-06-18" } });
  const context = limits(10, 1000);
  const summary = parseMcpRequestInfo(withVersion, bytes(body), context, true);
  assert.equal(summary.partial, true);
  assert.deepEqual(summary.messages, [{ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "echo" } }]);
  assert.equal(summary.protocolVersion, "2025-06-18");
  assert.equal(summary.firstId, 7);
  assert.equal(context.custom.rpcId, 7);
  // Asked again for a summary: the same one, from the cache.
  assert.equal(parseMcpRequestInfo(withVersion, bytes(body), context, true), summary);
  // Whoever needs the whole message gets it parsed in full, and cached in the summary's place.
  const full = await mcpRequestInfo(withVersion, context);
  assert.equal(full.partial, false);
  assert.deepEqual(full.messages, [JSON.parse(body)]);
  assert.equal(full.protocolVersion, summary.protocolVersion);
  assert.equal(parseMcpRequestInfo(withVersion, bytes(body), context, true), full);

  // What the scan leaves to the parser is parsed in full even when a summary would do:
  // `_meta` (it may name the protocol version), an initialize, a batch, a body that is not JSON.
  const meta = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "x", _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28" } } });
  const metaInfo = parseMcpRequestInfo(post(meta), bytes(meta), context, true);
  assert.equal(metaInfo.partial, false);
  assert.equal(metaInfo.protocolVersion, "2026-07-28");
  const init = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: { elicitation: {} } } });
  const initInfo = parseMcpRequestInfo(post(init), bytes(init), context, true);
  assert.equal(initInfo.partial, false);
  assert.equal(initInfo.protocolVersion, "2025-11-25");
  assert.deepEqual(initInfo.clientCapabilities, { elicitation: {} });
  const batch = JSON.stringify([call(1), call(2)]);
  assert.equal(parseMcpRequestInfo(post(batch), bytes(batch), context, true).batch, true);
  const broken = parseMcpRequestInfo(post("{not json"), bytes("{not json"), context, true);
  assert.equal(broken.parsed, false);
  assert.equal(broken.partial, false);
});
