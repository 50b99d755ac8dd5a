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
