import { test } from "node:test";
import assert from "node:assert/strict";
import {
  auth0Endpoints,
  auth0OptionsSchema,
  entraEndpoints,
  entraOptionsSchema,
  fromEndpoints,
  keycloakEndpoints,
  keycloakOptionsSchema,
  mcpOAuthOptionsSchema,
  oktaEndpoints,
  oktaOptionsSchema,
} from "./options.js";

const login = { clientId: "cid", clientSecret: "secret" };

test("defaults of the gateway block", () => {
  const o = mcpOAuthOptionsSchema.parse({});
  assert.equal(o.gateway.accessTokenTtlSeconds, 900);
  assert.equal(o.gateway.cimdEnabled, true);
  assert.deepEqual(o.gateway.scopesSupported, ["mcp"]);
  assert.deepEqual(o.clients, []);
});

test("browserLogin without oidc, and requiredScopes outside scopesSupported, are config errors", () => {
  const r = mcpOAuthOptionsSchema.safeParse({ browserLogin: { url: "https://idp.example/a", tokenUrl: "https://idp.example/t", clientId: "x" } });
  assert.equal(r.success, false);
  assert.deepEqual(r.error!.issues.map((i) => i.path.join(".")), ["oidc"]);
  const s = mcpOAuthOptionsSchema.safeParse({ gateway: { requiredScopes: ["admin"] } });
  assert.equal(s.success, false);
  assert.deepEqual(s.error!.issues[0]!.path, ["gateway", "requiredScopes", 0]);
});

test("presets map to the IdPs' documented endpoints", () => {
  const a = auth0Endpoints(auth0OptionsSchema.parse({ auth0Domain: "t.us.auth0.com", ...login }));
  assert.equal(a.issuer, "https://t.us.auth0.com/");
  assert.equal(a.tokenUrl, "https://t.us.auth0.com/oauth/token");
  const o = oktaEndpoints(oktaOptionsSchema.parse({ oktaDomain: "acme.okta.com", ...login }));
  assert.equal(o.issuer, "https://acme.okta.com/oauth2/default");
  assert.equal(o.authorizationUrl, "https://acme.okta.com/oauth2/default/v1/authorize");
  const k = keycloakEndpoints(keycloakOptionsSchema.parse({ keycloakBaseUrl: "https://kc.example/", realm: "corp", ...login }));
  assert.equal(k.issuer, "https://kc.example/realms/corp");
  assert.equal(k.jwksUrl, "https://kc.example/realms/corp/protocol/openid-connect/certs");
  const e = entraEndpoints(entraOptionsSchema.parse({ tenantId: "11111111-2222-3333-4444-555555555555", ...login }));
  assert.equal(e.issuer, "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0");
  assert.equal(entraOptionsSchema.safeParse({ tenantId: "common", ...login }).success, false);
  assert.equal(auth0OptionsSchema.safeParse({ auth0Domain: "https://t.auth0.com", ...login }).success, false);
  const g = fromEndpoints(a, { ...login, gateway: mcpOAuthOptionsSchema.parse({}).gateway, clients: [] }, "https://api.example");
  assert.equal(g.browserLogin?.audience, "https://api.example");
  assert.equal(g.browserLogin?.scope, "openid profile email");
  assert.equal(g.oidc?.jwksUrl, "https://t.us.auth0.com/.well-known/jwks.json");
});
