import { test } from "node:test";
import assert from "node:assert/strict";
import { createOriginCheck } from "./origin.js";

test("the public origin and configured origins pass; others fail", () => {
  const ok = createOriginCheck("https://gw.example.com", ["https://app.example.com"]);
  assert.equal(ok("https://gw.example.com", "gw.example.com"), true);
  assert.equal(ok("https://app.example.com", "gw.example.com"), true);
  assert.equal(ok("https://evil.example", "gw.example.com"), false);
  assert.equal(ok("null", "gw.example.com"), false);
});

test("a foreign origin naming the Host it was sent to is still refused (DNS rebinding)", () => {
  const ok = createOriginCheck("http://127.0.0.1:8080", []);
  assert.equal(ok("http://rebind.example:8080", "rebind.example:8080"), false);
});

test("loopback origins pass only on a loopback host", () => {
  const ok = createOriginCheck("https://gw.example.com", []);
  assert.equal(ok("http://localhost:6274", "127.0.0.1:8080"), true);
  assert.equal(ok("http://[::1]:6274", "[::1]:8080"), true);
  assert.equal(ok("http://localhost:6274", "gw.example.com"), false);
});

test('"*" accepts any origin', () => {
  assert.equal(createOriginCheck("https://gw.example.com", ["*"])("https://x.example", "gw.example.com"), true);
});
