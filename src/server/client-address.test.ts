import { test } from "node:test";
import assert from "node:assert/strict";
import { ClientAddressResolver, TrustedProxyError } from "./client-address.js";

test("without a trusted peer the forwarding field is ignored", () => {
  const r = new ClientAddressResolver(["10.0.0.0/8"]);
  assert.equal(r.resolve("203.0.113.9", "198.51.100.1"), "203.0.113.9");
});

test("behind trusted proxies the first untrusted hop from the right is the client", () => {
  const r = new ClientAddressResolver(["10.0.0.0/8", "::1"]);
  assert.equal(r.resolve("10.1.2.3", "198.51.100.1"), "198.51.100.1");
  assert.equal(r.resolve("::ffff:10.1.2.3", "198.51.100.1, 10.9.9.9"), "198.51.100.1", "chained trusted hops are skipped");
  assert.equal(r.resolve("::1", "[2001:db8::7]:443"), "2001:db8::7");
  assert.equal(r.resolve("10.1.2.3", undefined), "10.1.2.3");
});

test("a client cannot choose its address by writing the field itself", () => {
  const r = new ClientAddressResolver(["10.0.0.0/8"]);
  // The client sent "X-Forwarded-For: 1.1.1.1"; the proxy appended the client's real address.
  assert.equal(r.resolve("10.0.0.2", "1.1.1.1, 198.51.100.1"), "198.51.100.1");
  // Garbage where an address should be: the hop that wrote it is as far as the gateway can see.
  assert.equal(r.resolve("10.0.0.2", "1.1.1.1, unknown"), "10.0.0.2");
});

test("Forwarded (RFC 7239) is read when configured", () => {
  const r = new ClientAddressResolver(["127.0.0.1"], "forwarded");
  assert.equal(r.resolve("127.0.0.1", 'for=198.51.100.1;proto=https, for="[2001:db8::1]:4711"'), "2001:db8::1");
  assert.equal(r.resolve("127.0.0.1", "for=_hidden"), "127.0.0.1");
});

test("bad entries are refused at start-up", () => {
  for (const bad of ["10.0.0.0/33", "example.com", "10.0.0.0/8/1", "::1/129", "10.0.0.0/x"]) {
    assert.throws(() => new ClientAddressResolver([bad]), TrustedProxyError, bad);
  }
});
