import assert from "node:assert/strict";
import { test } from "node:test";
import type * as oauth from "oauth4webapi";
import { exchangeCode, newPkce, refreshTokens, validateCallback, type ClientIdentity } from "./flow.js";
import type { GuardedFetch, GuardedInit } from "./ssrf.js";

const as: oauth.AuthorizationServer = {
  issuer: "https://as.example",
  authorization_endpoint: "https://as.example/authorize",
  token_endpoint: "https://as.example/token",
  code_challenge_methods_supported: ["S256"],
};
const client: ClientIdentity = { clientId: "gw", tokenEndpointAuthMethod: "none" };

/** A token endpoint answering `body`, recording the form it received. */
function tokenEndpoint(body: Record<string, unknown>) {
  const forms: URLSearchParams[] = [];
  const fetch: GuardedFetch = async (_url: string | URL, init?: GuardedInit) => {
    forms.push(new URLSearchParams(String(init?.body ?? "")));
    return new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });
  };
  return { fetch, forms };
}

test("refresh sends resource and keeps the old refresh token when none is rotated in", async () => {
  const ep = tokenEndpoint({ access_token: "at-2", token_type: "Bearer", expires_in: 60 });
  const t = await refreshTokens(ep.fetch, as, client, { refreshToken: "rt-1", resource: "https://up.example/mcp", now: 1_000 });
  assert.equal(t.accessToken, "at-2");
  assert.equal(t.refreshToken, "rt-1");
  assert.equal(t.expiresAt, 61_000);
  assert.equal(ep.forms[0]?.get("resource"), "https://up.example/mcp");
  assert.equal(ep.forms[0]?.get("grant_type"), "refresh_token");
});

test("tokens the gateway cannot present as Bearer (DPoP-bound, other types) are refused", async () => {
  for (const tokenType of ["DPoP", "mac", "N_A"]) {
    const ep = tokenEndpoint({ access_token: "at", token_type: tokenType, expires_in: 60, refresh_token: "rt" });
    await assert.rejects(
      refreshTokens(ep.fetch, as, client, { refreshToken: "rt", resource: "https://up.example/mcp", now: 0 }),
      { code: "upstream_other", oauthError: "unsupported_token_type" },
      tokenType,
    );
    const pkce = await newPkce();
    const params = validateCallback(as, client, new URLSearchParams({ code: "c1", state: pkce.state }), pkce.state);
    await assert.rejects(
      exchangeCode(ep.fetch, as, client, { params, redirectUri: "https://gw.example/cb", verifier: pkce.verifier, resource: "https://up.example/mcp", now: 0 }),
      { code: "upstream_other", oauthError: "unsupported_token_type" },
      tokenType,
    );
  }
});
