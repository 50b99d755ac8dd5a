import assert from "node:assert/strict";
import { test } from "node:test";
import { bearerChallenge, parseWwwAuthenticate } from "./challenge.js";
import { chooseScopes, formatScopes, splitScopes, stepUpScopes, unionScopes, MAX_STEP_UPS } from "./scopes.js";

test("parses Bearer challenges with quoted and token params", () => {
  const h = `Bearer realm="mcp", error="insufficient_scope", scope="a b:c", resource_metadata="https://x.test/.well-known/oauth-protected-resource/mcp"`;
  assert.deepEqual(bearerChallenge(h), {
    resourceMetadata: "https://x.test/.well-known/oauth-protected-resource/mcp",
    scope: "a b:c",
    error: "insufficient_scope",
  });
  assert.deepEqual(bearerChallenge("Bearer error=invalid_token"), { resourceMetadata: undefined, scope: undefined, error: "invalid_token" });
});

test("parses several challenges and escaped quotes", () => {
  const all = parseWwwAuthenticate(`Basic realm="a, b", Bearer scope="x \\"y\\"", DPoP algs="ES256"`);
  assert.deepEqual(
    all.map((c) => c.scheme),
    ["basic", "bearer", "dpop"],
  );
  assert.equal(all[0]!.params.realm, "a, b");
  assert.equal(all[1]!.params.scope, 'x "y"');
  assert.equal(all[2]!.params.algs, "ES256");
});

test("tolerates junk", () => {
  assert.deepEqual(parseWwwAuthenticate(undefined), []);
  assert.deepEqual(parseWwwAuthenticate(""), []);
  assert.equal(bearerChallenge("Negotiate abc==").resourceMetadata, undefined);
  assert.equal(parseWwwAuthenticate(`Bearer scope="unterminated`)[0]!.params.scope, "unterminated");
});

test("scope choice: configured, then challenge, then scopes_supported, then none", () => {
  assert.deepEqual(chooseScopes({ configured: ["mcp"], challengeScope: "a", scopesSupported: ["b"] }), { scopes: ["mcp"], source: "configured" });
  assert.deepEqual(chooseScopes({ configured: [], challengeScope: "a  b", scopesSupported: ["c"] }), { scopes: ["a", "b"], source: "challenge" });
  assert.deepEqual(chooseScopes({ challengeScope: undefined, scopesSupported: ["c", "d"] }), { scopes: ["c", "d"], source: "scopes_supported" });
  assert.deepEqual(chooseScopes({}), { scopes: [], source: "none" });
  assert.equal(formatScopes([], " "), undefined);
  assert.equal(formatScopes(["a", "b"], ","), "a,b");
  assert.deepEqual(splitScopes("a,b", ","), ["a", "b"]);
  assert.deepEqual(unionScopes(["a"], ["b", "a"], undefined), ["a", "b"]);
});

test("step-up asks for the union, only when something new is wanted, within a limit", () => {
  assert.deepEqual(stepUpScopes({ requested: ["read"], challengeScope: "read write", stepUps: 0 }), ["read", "write"]);
  assert.equal(stepUpScopes({ requested: ["read", "write"], challengeScope: "write", stepUps: 0 }), undefined);
  assert.equal(stepUpScopes({ requested: ["read"], challengeScope: undefined, stepUps: 0 }), undefined);
  assert.equal(stepUpScopes({ requested: ["read"], challengeScope: "admin", stepUps: MAX_STEP_UPS }), undefined);
});
