import { test } from "node:test";
import assert from "node:assert/strict";
import { asGatewayRequest, GatewayRequest } from "./types.js";

const bytes = () => new TextEncoder().encode('{"jsonrpc":"2.0","id":1,"method":"ping"}');
const held = (init: ConstructorParameters<typeof GatewayRequest>[1] = {}) =>
  new GatewayRequest("http://gw.test/mcp", { method: "POST", headers: { "content-type": "application/json" }, rawBody: bytes(), ...init });

test("a held body reads once through text/json/arrayBuffer, like a web body", async () => {
  const r = held();
  assert.equal(r.bodyUsed, false);
  assert.deepEqual(await r.json(), { jsonrpc: "2.0", id: 1, method: "ping" });
  assert.equal(r.bodyUsed, true);
  await assert.rejects(() => r.text(), TypeError);
  // the gateway's own copy stays available
  assert.equal(new TextDecoder().decode(await r.rawBytes()), '{"jsonrpc":"2.0","id":1,"method":"ping"}');
  assert.equal((await held().arrayBuffer()).byteLength, bytes().byteLength);
  assert.equal((await held().blob()).type, "application/json");
});

test("a held body is also a readable stream, and clones independently", async () => {
  const r = held();
  const c = r.clone();
  assert.ok(c instanceof GatewayRequest);
  assert.equal(await new Response(r.body).text(), '{"jsonrpc":"2.0","id":1,"method":"ping"}');
  assert.equal(r.bodyUsed, true);
  assert.equal(c.bodyUsed, false);
  assert.equal((await c.json()).method, "ping");
});

test("a new GatewayRequest built from another keeps bytes, user, params and signal", async () => {
  const ac = new AbortController();
  const first = held({ signal: ac.signal, user: { sub: "alice", data: {} }, params: { id: "7" } });
  const next = new GatewayRequest(first, { headers: { "x-extra": "1" } });
  assert.equal(next.user?.sub, "alice");
  assert.equal(next.params.id, "7");
  assert.equal(next.headers.get("x-extra"), "1");
  assert.equal((await next.json()).id, 1);
  assert.equal(next.signal, ac.signal);
  ac.abort();
  assert.equal(first.signal.aborted, true);
});

test("a plain Request built from a held one gets the held bytes back when re-wrapped", async () => {
  const first = held({ user: { sub: "bob", data: {} } });
  const plain = new Request(first, { headers: { "x-policy": "yes" } });
  const wrapped = asGatewayRequest(plain, first);
  assert.equal(wrapped.user?.sub, "bob");
  assert.equal(wrapped.headers.get("x-policy"), "yes");
  assert.equal((await wrapped.json()).method, "ping");
});

test("requests given a real body (not held) behave as before", async () => {
  const plain = new Request("http://gw.test/x", { method: "PUT", body: "hello" });
  const r = new GatewayRequest(plain);
  assert.equal(new TextDecoder().decode(await r.rawBytes()), "hello");
  assert.equal(await r.text(), "hello");
  assert.equal(r.bodyUsed, true);
  const replaced = new GatewayRequest(new Request("http://gw.test/x", { method: "POST", body: "old" }), { rawBody: new TextEncoder().encode("new") });
  assert.equal(await replaced.text(), "new");
});

test("GET and HEAD never carry a body", async () => {
  const r = new GatewayRequest("http://gw.test/mcp", { method: "GET", rawBody: bytes() });
  assert.equal(r.body, null);
  assert.equal((await r.rawBytes()).byteLength, 0);
});

test("a held request used as init (fetch(url, request)) carries its body", async () => {
  const copy = new Request("http://upstream.test/mcp", held());
  assert.equal(copy.method, "POST");
  assert.equal((await copy.json()).method, "ping");
});
