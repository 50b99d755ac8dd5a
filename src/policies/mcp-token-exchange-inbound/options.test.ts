import { test } from "node:test";
import assert from "node:assert/strict";
import { tokenExchangeOptionsSchema } from "./options.js";

const paths = (r: { error?: { issues: Array<{ path: PropertyKey[] }> } }) => r.error!.issues.map((i) => i.path.join("."));
const idJag = {
  idp: { tokenUrl: "https://idp.example/token", clientAuth: { method: "client_secret_post", clientId: "gw", clientSecret: "s" } },
  resourceAs: {
    tokenUrl: "https://as.example/token",
    audience: "https://as.example",
    clientAuth: { method: "private_key_jwt", clientId: "gw", privateKeyPem: "-----BEGIN PRIVATE KEY-----" },
  },
};

test("authMode defaults to user-oauth; defaults of the OAuth modes", () => {
  const o = tokenExchangeOptionsSchema.parse({ displayName: "Linear" });
  assert.equal(o.authMode, "user-oauth");
  assert.equal(o.scopeDelimiter, " ");
  assert.deepEqual(o.clientRegistration, { mode: "auto" });
});

test('authMode "id-jag": idJag required, OAuth-mode options refused, defaults filled', () => {
  const ok = tokenExchangeOptionsSchema.parse({ displayName: "X", authMode: "id-jag", idJag });
  assert.equal(ok.authMode, "id-jag");
  assert.equal(ok.idJag!.scopeDelimiter, " ");
  assert.deepEqual(ok.idJag!.scopes, []);
  const rc = ok.idJag!.resourceAs.clientAuth;
  assert.ok(rc.method === "private_key_jwt" && rc.algorithm === "RS256" && rc.expiresInSeconds === 300);
  // Every mistake is reported at once.
  const worse = tokenExchangeOptionsSchema.safeParse({ displayName: "X", authMode: "id-jag", scopes: ["a"], prompt: false });
  assert.deepEqual(paths(worse), ["idJag", "scopes", "prompt"]);
  const bad = tokenExchangeOptionsSchema.safeParse({ displayName: "X", authMode: "id-jag", idJag: { ...idJag, resourceAs: { ...idJag.resourceAs, clientAuth: { method: "private_key_jwt", clientId: "gw", privateKeyPem: "k", expiresInSeconds: 7200 } } } });
  assert.deepEqual(paths(bad), ["idJag.resourceAs.clientAuth.expiresInSeconds"]);
  // idJag belongs to id-jag only.
  assert.deepEqual(paths(tokenExchangeOptionsSchema.safeParse({ displayName: "X", authMode: "user-oauth", idJag })), ["idJag"]);
});

test("manual client registration: unknown members are errors", () => {
  const r = tokenExchangeOptionsSchema.safeParse({ displayName: "X", clientRegistration: { mode: "manual", clientId: "c", clientSecret: "s", tokenUrl: "x" } });
  assert.equal(r.success, false);
});

test("manual client registration with private_key_jwt: the key settings only with it, never a secret with it", () => {
  const manual = (m: Record<string, unknown>) => tokenExchangeOptionsSchema.safeParse({ displayName: "X", clientRegistration: { mode: "manual", clientId: "c", ...m } });
  const ok = manual({ tokenEndpointAuthMethod: "private_key_jwt", privateKeyPem: "pem" });
  assert.equal(ok.success, true);
  assert.deepEqual(ok.data!.clientRegistration, {
    mode: "manual",
    clientId: "c",
    tokenEndpointAuthMethod: "private_key_jwt",
    privateKey: { privateKeyPem: "pem", algorithm: "RS256", keyId: undefined, audience: undefined, expiresInSeconds: 300 },
  });
  const full = manual({ tokenEndpointAuthMethod: "private_key_jwt", privateKeyPem: "pem", algorithm: "PS512", keyId: "k1", audience: "https://as.example/token", expiresInSeconds: 60 });
  assert.deepEqual((full.data!.clientRegistration as { privateKey: unknown }).privateKey, {
    privateKeyPem: "pem",
    algorithm: "PS512",
    keyId: "k1",
    audience: "https://as.example/token",
    expiresInSeconds: 60,
  });
  // Each mistake is reported at its own path (not as "invalid value" of the whole block).
  for (const [bad, path] of [
    [{ tokenEndpointAuthMethod: "private_key_jwt" }, "clientRegistration.privateKeyPem"],
    [{ tokenEndpointAuthMethod: "private_key_jwt", privateKeyPem: "" }, "clientRegistration.privateKeyPem"],
    [{ tokenEndpointAuthMethod: "private_key_jwt", privateKeyPem: "pem", clientSecret: "s" }, "clientRegistration.clientSecret"],
    [{ tokenEndpointAuthMethod: "private_key_jwt", privateKeyPem: "pem", algorithm: "HS256" }, "clientRegistration.algorithm"],
    [{ tokenEndpointAuthMethod: "private_key_jwt", privateKeyPem: "pem", expiresInSeconds: 7200 }, "clientRegistration.expiresInSeconds"],
    [{ clientSecret: "s", privateKeyPem: "pem" }, "clientRegistration.privateKeyPem"],
    [{ tokenEndpointAuthMethod: "none", keyId: "k1" }, "clientRegistration.keyId"],
    [{ tokenEndpointAuthMethod: "client_secret_post" }, "clientRegistration.clientSecret"],
  ] as const) {
    assert.deepEqual(paths(manual(bad)), [path], JSON.stringify(bad));
  }
  // The secret methods are unchanged.
  assert.deepEqual(manual({ clientSecret: "s" }).data!.clientRegistration, { mode: "manual", clientId: "c", clientSecret: "s", tokenEndpointAuthMethod: "client_secret_basic", privateKey: undefined });
});
