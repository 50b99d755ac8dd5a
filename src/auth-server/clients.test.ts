import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { redirectUriMatches, redirectUriProblem, scopeList } from "./clients.js";
import { cimdUrlProblem, clientFromDocument } from "./cimd.js";
import { parseToken, pkceMatches } from "./tokens.js";

test("redirect URI rules: https, loopback http, private-use schemes; never fragments or scripts", () => {
  for (const ok of ["https://app.example/cb", "http://127.0.0.1:3000/cb", "http://localhost/cb", "http://[::1]:9/cb", "cursor://x/cb", "com.example.app:/oauth"]) {
    assert.equal(redirectUriProblem(ok), undefined, ok);
  }
  for (const bad of ["http://app.example/cb", "javascript:alert(1)", "data:text/html,x", "https://a.example/cb#x", "https://u:p@a.example/", "/relative", "", 7]) {
    assert.notEqual(redirectUriProblem(bad), undefined, String(bad));
  }
});

test("redirect URI matching is exact, except the port of loopback http URIs", () => {
  const reg = ["http://127.0.0.1/callback", "https://app.example/cb"];
  assert.equal(redirectUriMatches(reg, "https://app.example/cb"), true);
  assert.equal(redirectUriMatches(reg, "http://127.0.0.1:51234/callback"), true);
  assert.equal(redirectUriMatches(reg, "http://127.0.0.1:51234/callback/x"), false);
  assert.equal(redirectUriMatches(reg, "http://localhost:51234/callback"), false);
  assert.equal(redirectUriMatches(reg, "https://app.example/cb/"), false);
  assert.equal(redirectUriMatches(reg, "https://app.example:444/cb"), false);
  assert.equal(redirectUriMatches(reg, "https://app.example/cb?x=1"), false);
});

test("URL client ids: https with a path, normalized, no fragment or dot segments", () => {
  assert.equal(cimdUrlProblem("https://client.example/oauth/client.json"), undefined);
  assert.notEqual(cimdUrlProblem("http://client.example/c.json"), undefined);
  assert.notEqual(cimdUrlProblem("https://client.example/"), undefined);
  assert.notEqual(cimdUrlProblem("https://client.example/a/../c.json"), undefined);
  assert.notEqual(cimdUrlProblem("https://client.example/c.json#x"), undefined);
  assert.notEqual(cimdUrlProblem("https://u@client.example/c.json"), undefined);
  assert.notEqual(cimdUrlProblem("https://CLIENT.example/c.json"), undefined);
});

test("client metadata documents must name themselves and hold no secret", () => {
  const id = "https://client.example/c.json";
  const doc = { client_id: id, client_name: "C", redirect_uris: ["http://127.0.0.1/cb"] };
  const ok = clientFromDocument(id, doc);
  assert.equal(typeof ok, "object");
  assert.equal(typeof clientFromDocument(id, { ...doc, client_id: "https://other.example/c.json" }), "string");
  assert.equal(typeof clientFromDocument(id, { ...doc, client_secret: "s" }), "string");
  assert.equal(typeof clientFromDocument(id, { ...doc, token_endpoint_auth_method: "client_secret_basic" }), "string");
  assert.equal(typeof clientFromDocument(id, { ...doc, redirect_uris: ["http://evil.example/cb"] }), "string");
  assert.equal(typeof clientFromDocument(id, []), "string");
});

test("PKCE S256 and token parsing", () => {
  const verifier = "a".repeat(43);
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  assert.equal(pkceMatches(verifier, challenge), true);
  assert.equal(pkceMatches("b".repeat(43), challenge), false);
  assert.equal(pkceMatches("short", createHash("sha256").update("short").digest("base64url")), false);
  const t = `tga_${"A".repeat(22)}.${"B".repeat(43)}`;
  assert.equal(parseToken(t)?.kind, "access");
  assert.equal(parseToken(t)?.grantId, "A".repeat(22));
  assert.equal(parseToken(`tgr_${"A".repeat(22)}.${"B".repeat(43)}`)?.kind, "refresh");
  assert.equal(parseToken("eyJhbGciOi.x.y"), undefined);
  assert.deepEqual(scopeList(" mcp  mcp read "), ["mcp", "read"]);
});
