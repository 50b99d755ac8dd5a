import { test } from "node:test";
import assert from "node:assert/strict";
import { downstreamResponseHeaders, upstreamRequestHeaders, withoutCredentials } from "./headers.js";

const fwd = { remoteAddress: "10.0.0.9", proto: "https", host: "gw.example.com" };

test("request: credentials, hop-by-hop and Connection-listed fields are dropped; policy headers win", () => {
  const inbound = new Headers({
    authorization: "Bearer client",
    cookie: "a=b",
    origin: "https://gw.example.com",
    connection: "keep-alive, X-Secret",
    "x-secret": "1",
    "proxy-authorization": "p",
    "content-length": "12",
    host: "gw.example.com",
    "mcp-session-id": "s1",
    "mcp-protocol-version": "2025-11-25",
    "last-event-id": "e1",
    "mcp-method": "tools/call",
    "mcp-name": "echo",
    "x-forwarded-for": "1.2.3.4",
    "x-forwarded-host": "spoofed",
  });
  const out = upstreamRequestHeaders(inbound, { Authorization: "Bearer upstream" }, fwd, "req-1");
  assert.deepEqual(out, {
    "mcp-session-id": "s1",
    "mcp-protocol-version": "2025-11-25",
    "last-event-id": "e1",
    "mcp-method": "tools/call",
    "mcp-name": "echo",
    "x-forwarded-for": "1.2.3.4, 10.0.0.9",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "gw.example.com",
    "x-request-id": "req-1",
    authorization: "Bearer upstream",
  });
});

test("request: headers a policy consumed as credentials are dropped; a policy's own value for that name wins", () => {
  const inbound = new Headers({ "x-api-key": "caller-key", "x-auth-token": "Bearer jwt", "x-trace": "t" });
  const consumed = new Set(["x-api-key", "x-auth-token"]);
  const out = upstreamRequestHeaders(inbound, {}, fwd, "req-1", consumed);
  assert.equal(out["x-api-key"], undefined);
  assert.equal(out["x-auth-token"], undefined);
  assert.equal(out["x-trace"], "t");
  assert.equal(upstreamRequestHeaders(inbound, { "X-Api-Key": "upstream-key" }, fwd, "req-1", consumed)["x-api-key"], "upstream-key");
});

test("credentials are removed for another origin", () => {
  const h = { authorization: "Bearer u", "x-api-key": "k", accept: "a" };
  assert.deepEqual(withoutCredentials(h, { "X-Api-Key": "k", Authorization: "Bearer u" }), { accept: "a" });
});

test("response: hop-by-hop fields and upstream cookies are dropped, containment headers added", () => {
  const out = downstreamResponseHeaders({
    connection: "keep-alive, x-internal",
    "keep-alive": "timeout=5",
    "x-internal": "1",
    "transfer-encoding": "chunked",
    "content-type": "text/event-stream",
    "mcp-session-id": "s1",
    "set-cookie": ["a=1", "b=2"],
  });
  assert.deepEqual(out, [
    ["content-type", "text/event-stream"],
    ["mcp-session-id", "s1"],
    ["content-security-policy", "sandbox; default-src 'none'"],
    ["x-content-type-options", "nosniff"],
  ]);
});
