import { test } from "node:test";
import assert from "node:assert/strict";
import { fromEndpoints, mcpOAuthOptionsSchema } from "./options.js";
import { auth0Endpoints, auth0OptionsSchema } from "./presets/auth0.js";

const login = { url: "https://idp.example/a", tokenUrl: "https://idp.example/t", clientId: "x" };
const oidc = { issuer: "https://idp.example/", jwksUrl: "https://idp.example/jwks" };
const paths = (r: { success: boolean; error?: { issues: Array<{ path: PropertyKey[] }> } }) =>
  r.error!.issues.map((i) => i.path.join("."));

test("defaults of the gateway block and of browserLogin", () => {
  const o = mcpOAuthOptionsSchema.parse({ oidc, browserLogin: login });
  assert.equal(o.gateway.accessTokenTtlSeconds, 900);
  assert.equal(o.gateway.refreshTokenTtlSeconds, 2_592_000);
  assert.equal(o.gateway.cimdEnabled, true);
  assert.equal(o.gateway.authorizationRequestTtlSeconds, undefined);
  assert.deepEqual(o.gateway.scopesSupported, ["mcp:tools"]);
  assert.deepEqual(o.clients, []);
  const b = o.browserLogin!;
  assert.deepEqual(
    [b.scope, b.pkce, b.remoteTimeoutMs, b.stateTtlSeconds, b.sessionTtlSeconds, b.dev],
    ["openid profile email", true, 10_000, 900, 28_800, false],
  );
});

test("TTL ranges are int >= 1 as documented", () => {
  const o = mcpOAuthOptionsSchema.parse({ gateway: { accessTokenTtlSeconds: 1, refreshTokenTtlSeconds: 315_360_000 } });
  assert.equal(o.gateway.refreshTokenTtlSeconds, 315_360_000);
  for (const bad of [0, 1.5, -3]) {
    assert.deepEqual(paths(mcpOAuthOptionsSchema.safeParse({ gateway: { accessTokenTtlSeconds: bad } })), ["gateway.accessTokenTtlSeconds"]);
    assert.deepEqual(paths(mcpOAuthOptionsSchema.safeParse({ browserLogin: { ...login, sessionTtlSeconds: bad }, oidc })), ["browserLogin.sessionTtlSeconds"]);
  }
});

test('pkce: "S256" | "none", and the older boolean', () => {
  const p = (pkce: unknown, extra = {}) => mcpOAuthOptionsSchema.safeParse({ oidc, browserLogin: { ...login, clientSecret: "s", pkce, ...extra } });
  assert.equal(p("S256").data?.browserLogin?.pkce, true);
  assert.equal(p("none").data?.browserLogin?.pkce, false);
  assert.equal(p(true).data?.browserLogin?.pkce, true);
  assert.equal(p(false).data?.browserLogin?.pkce, false);
  assert.deepEqual(paths(p("plain")), ["browserLogin.pkce"]);
  // A public client must use PKCE.
  assert.deepEqual(paths(mcpOAuthOptionsSchema.safeParse({ oidc, browserLogin: { ...login, pkce: "none" } })), ["browserLogin.pkce"]);
});

test("the dev login set-up: url names the gateway's dev login page, nothing else", () => {
  for (const url of ["http://127.0.0.1:9000/__zuplo/oauth/dev-login", "http://127.0.0.1:9000/oauth/dev-login"]) {
    const o = mcpOAuthOptionsSchema.parse({
      oidc: { issuer: "http://127.0.0.1:9000", jwksUrl: "http://127.0.0.1:9000/.well-known/jwks.json" },
      browserLogin: { url },
    });
    assert.equal(o.browserLogin?.dev, true);
  }
  // Without oidc too (Tollgate needs no keys for its own dev login).
  assert.equal(mcpOAuthOptionsSchema.parse({ browserLogin: { url: "http://localhost:9000/__zuplo/oauth/dev-login" } }).browserLogin?.dev, true);
  // A federated login needs tokenUrl and clientId; the dev page with a client is a mistake.
  assert.deepEqual(paths(mcpOAuthOptionsSchema.safeParse({ oidc, browserLogin: { url: "https://idp.example/a" } })), [
    "browserLogin.tokenUrl",
    "browserLogin.clientId",
  ]);
  const mixed = mcpOAuthOptionsSchema.safeParse({ oidc, browserLogin: { url: "http://127.0.0.1:9000/__zuplo/oauth/dev-login", clientId: "c" } });
  assert.deepEqual(paths(mixed), ["browserLogin.tokenUrl"]);
  assert.match(mixed.error!.issues[0]!.message, /dev login set-up names only url/);
});

test("browserLogin without oidc, unknown nested options, requiredScopes outside scopesSupported are config errors", () => {
  assert.deepEqual(paths(mcpOAuthOptionsSchema.safeParse({ browserLogin: login })), ["oidc"]);
  assert.deepEqual(paths(mcpOAuthOptionsSchema.safeParse({ oidc, browserLogin: { ...login, pkceMode: "S256" } })), ["browserLogin"]);
  assert.deepEqual(paths(mcpOAuthOptionsSchema.safeParse({ gateway: { ttl: 5 } })), ["gateway"]);
  assert.deepEqual(paths(mcpOAuthOptionsSchema.safeParse({ gateway: { requiredScopes: ["admin"] } })), ["gateway.requiredScopes.0"]);
});

test("idJag: the documented shape, enabled or not", () => {
  assert.equal(mcpOAuthOptionsSchema.safeParse({ idJag: { enabled: false } }).success, true);
  const on = mcpOAuthOptionsSchema.parse({ idJag: { enabled: true, trustedIssuers: [{ subjectMapping: "sub_id_only" }, { issuer: "https://i.example", jwksUrl: "https://i.example/jwks" }] } });
  assert.deepEqual(on.idJag, {
    enabled: true,
    trustedIssuers: [
      { subjectMapping: "sub_id_only" },
      { issuer: "https://i.example", jwksUrl: "https://i.example/jwks", subjectMapping: "iss_prefix" },
    ],
  });
  assert.equal(mcpOAuthOptionsSchema.safeParse({ idJag: { enabled: true } }).success, true);
  const half = mcpOAuthOptionsSchema.safeParse({ idJag: { enabled: true, trustedIssuers: [{ issuer: "https://i.example" }] } });
  assert.ok(paths(half).includes("idJag.trustedIssuers.0"));
  assert.deepEqual(paths(mcpOAuthOptionsSchema.safeParse({ idJag: { enabled: true, trustedIssuers: [] } })), ["idJag.trustedIssuers"]);
  assert.deepEqual(paths(mcpOAuthOptionsSchema.safeParse({ idJag: { enabled: true, trustedIssuers: [{ subjectMapping: "email" }] } })), ["idJag.trustedIssuers.0.subjectMapping"]);
  assert.deepEqual(paths(mcpOAuthOptionsSchema.safeParse({ idJag: { enabled: false, trustedIssuers: [] } })), ["idJag"]);
});

test("fromEndpoints: a preset's audience is both oidc.audience and the login audience; overrides apply", () => {
  const o = auth0OptionsSchema.parse({
    auth0Domain: "t.us.auth0.com",
    clientId: "c",
    clientSecret: "s",
    audience: "https://api.example",
    browserLoginOverrides: { remoteTimeoutMs: 2500, stateTtlSeconds: 120, sessionTtlSeconds: 60, pkce: "none" },
  });
  const g = fromEndpoints(auth0Endpoints(o), o, { audience: o.audience });
  assert.equal(g.oidc?.audience, "https://api.example");
  assert.equal(g.browserLogin?.audience, "https://api.example");
  assert.deepEqual(
    [g.browserLogin?.remoteTimeoutMs, g.browserLogin?.stateTtlSeconds, g.browserLogin?.sessionTtlSeconds, g.browserLogin?.pkce],
    [2500, 120, 60, false],
  );
  assert.equal(g.browserLogin?.scope, "openid profile email");
});
