import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { test } from "node:test";
import { createSessionBinder, SESSION_TAG_LENGTH } from "./session.js";

const key = randomBytes(32);
const binder = createSessionBinder(key);

test("bind appends the truncated base64url HMAC of route, sub and upstream id", () => {
  const bound = binder.bind("abc-123", "mcp-0", "alice");
  const expected = createHmac("sha256", key).update("5:mcp-05:aliceabc-123").digest("base64url").slice(0, 22);
  assert.equal(bound, `abc-123.${expected}`);
  assert.equal(SESSION_TAG_LENGTH, 22);
  assert.match(bound, /^[\x21-\x7e]+$/);
});

test("route and subject are length-prefixed, so a newline or colon in them cannot imitate another pair", () => {
  const a = binder.bind("s", "r\nx", "y");
  assert.equal(binder.unbind(a, "r", "x\ny"), undefined);
  const b = binder.bind("s", "1:a", "b");
  assert.equal(binder.unbind(b, "1", "a1:b"), undefined);
});

test("unbind returns the upstream id for the same caller and route only", () => {
  const bound = binder.bind("up.stream.id", "mcp-0", "alice");
  assert.equal(binder.unbind(bound, "mcp-0", "alice"), "up.stream.id", "splits at the last dot");
  assert.equal(binder.unbind(bound, "mcp-0", "bob"), undefined, "other user");
  assert.equal(binder.unbind(bound, "mcp-1", "alice"), undefined, "other route");
  assert.equal(createSessionBinder(randomBytes(32)).unbind(bound, "mcp-0", "alice"), undefined, "other key");
  assert.equal(createSessionBinder(Buffer.from(key)).unbind(bound, "mcp-0", "alice"), "up.stream.id", "same key elsewhere");
});

test("unbind rejects missing, short, long and forged tags", () => {
  const bound = binder.bind("sid", "r", "u");
  const tag = bound.slice(4);
  assert.equal(binder.unbind("sid", "r", "u"), undefined);
  assert.equal(binder.unbind("sid.", "r", "u"), undefined);
  assert.equal(binder.unbind(`.${tag}`, "r", "u"), undefined);
  assert.equal(binder.unbind(bound.slice(0, -1), "r", "u"), undefined);
  assert.equal(binder.unbind(`${bound}A`, "r", "u"), undefined);
  const flipped = `sid.${tag[0] === "A" ? "B" : "A"}${tag.slice(1)}`;
  assert.equal(binder.unbind(flipped, "r", "u"), undefined);
  assert.equal(binder.unbind(`other.${tag}`, "r", "u"), undefined, "tag moved to another id");
});
