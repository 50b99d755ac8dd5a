import { test } from "node:test";
import assert from "node:assert/strict";
import { asGatewayRequest, ClientDisconnect, deriveRequest, GatewayRequest, IncomingRequest, webRequestOf, webRequestReady } from "./types.js";
import { HeaderMap } from "./header-map.js";

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

const incoming = (disconnect = new ClientDisconnect()) =>
  new IncomingRequest("POST", "http://gw.test/mcp?x=1", HeaderMap.fromRawHeaders(["Content-Type", "application/json", "Mcp-Session-Id", "s1"]), bytes(), disconnect);

test("an incoming request serves its bytes without consuming them, and becomes a web Request once", async () => {
  const r = incoming();
  r.user = { sub: "alice", data: {} };
  r.params = { id: "7" };
  assert.equal((await r.json()).method, "ping");
  assert.equal(await r.text(), '{"jsonrpc":"2.0","id":1,"method":"ping"}');
  const web = webRequestOf(r);
  assert.ok(web instanceof Request && web instanceof GatewayRequest);
  assert.equal(webRequestOf(r), web, "built once");
  assert.equal(web.method, "POST");
  assert.equal(web.url, "http://gw.test/mcp?x=1");
  assert.equal(web.headers.get("mcp-session-id"), "s1");
  assert.equal(web.user?.sub, "alice");
  assert.equal(web.params.id, "7");
  assert.equal((await web.json()).id, 1);
  assert.equal(webRequestOf(web), web);
});

test("GET incoming requests have no body", async () => {
  const r = new IncomingRequest("GET", "http://gw.test/mcp", new HeaderMap(), bytes(), new ClientDisconnect());
  assert.equal((await r.rawBytes()).byteLength, 0);
  assert.equal(webRequestOf(r).body, null);
});

test("a derived request keeps its kind, user and disconnect, with the new headers and body", async () => {
  const d = new ClientDisconnect();
  const r = incoming(d);
  r.user = { sub: "bob", data: {} };
  const next = deriveRequest(r, { headers: new Headers({ "x-new": "1" }), rawBody: new TextEncoder().encode("[]") });
  assert.ok(next instanceof IncomingRequest);
  assert.equal(next.user?.sub, "bob");
  assert.equal(next.headers.get("x-new"), "1");
  assert.equal(await next.text(), "[]");
  assert.equal(next.disconnect, d);
  const web = deriveRequest(webRequestOf(r), { rawBody: new TextEncoder().encode("{}") });
  assert.ok(web instanceof GatewayRequest);
  assert.equal(await web.text(), "{}");
  assert.equal(web.headers.get("mcp-session-id"), "s1");
});

test("a client disconnect reaches emitter listeners and a web signal made before or after", () => {
  const d = new ClientDisconnect();
  const calls: string[] = [];
  const early = d.signal;
  const gone = () => calls.push("removed");
  d.on("abort", () => calls.push("on")).once("abort", gone).removeListener("abort", gone);
  assert.equal(early.aborted, false);
  const reason = new Error("client disconnected");
  d.abort(reason);
  d.abort(new Error("twice"));
  assert.deepEqual(calls, ["on"]);
  assert.equal(d.aborted, true);
  assert.equal(d.reason, reason);
  assert.equal(early.aborted, true);
  assert.equal(early.reason, reason);
  const late = new ClientDisconnect();
  late.abort(reason);
  assert.equal(late.signal.aborted, true);
  assert.equal(late.signal.reason, reason);
});

test("a lazy body is read once, on first use, and shared by derived requests", async () => {
  let reads = 0;
  const bytes = new TextEncoder().encode('{"id":1}');
  const lazy = {
    bytes: undefined as Uint8Array | undefined,
    promise: undefined as Promise<Uint8Array> | undefined,
    read() {
      reads++;
      return (this.promise ??= Promise.resolve().then(() => (this.bytes = bytes)));
    },
  };
  const r = new IncomingRequest("POST", "http://gw.test/mcp", new HeaderMap(), lazy, new ClientDisconnect());
  assert.equal(reads, 0, "nothing is read when the request is built");
  assert.equal(r.bodyPending, true);
  assert.throws(() => r.toWebRequest(), /not been read/);
  const derived = r.with({ headers: new Headers({ "x-a": "1" }) });
  assert.deepEqual(await derived.json(), { id: 1 });
  assert.equal(r.bodyPending, false, "the derived request read the shared body");
  assert.equal(await (await webRequestReady(r)).text(), '{"id":1}');
});
