import { test } from "node:test";
import assert from "node:assert/strict";
import { GatewayError } from "../errors.js";
import { GatewayRequest, type GatewayContext } from "../pipeline/types.js";
import { isBatchBody, mcpRequestInfo } from "./messages.js";

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
