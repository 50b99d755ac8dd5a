/**
 * `mcp-oidc-oauth-inbound`: the IdP's endpoints come from its discovery document at start-up.
 * Also the browser login's own protections (state bound to the browser, single use).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { TestBrowser } from "../fixtures/oauth-upstream.js";
import { startIdp, type TestIdp } from "../fixtures/idp.js";
import { mcpInitialize, obtainTokens, startAuthEnv, type AuthEnv } from "./auth-server-helpers.js";

describe("mcp-oidc-oauth-inbound (discovery)", () => {
  let env: AuthEnv;
  before(async () => {
    env = await startAuthEnv({ oidcPreset: true });
  });
  after(async () => {
    await env.close();
  });

  test("discovered IdP signs the user in; tokens work on the route", async () => {
    const { tokens } = await obtainTokens(env);
    const res = await mcpInitialize(env.routeA, String(tokens.access_token));
    assert.equal(res.status, 200);
    await res.text();
    const grants = await env.gw.services.store.list<{ user: { sub: string; data: Record<string, unknown> } }>("as-grants");
    assert.equal(grants.at(-1)!.value.user.data.email, "alice@example.com");
  });

  test("an IdP callback from another browser (no matching state cookie) is refused", async () => {
    const victim = new TestBrowser();
    const attacker = new TestBrowser();
    // The attacker starts a login and stops at the IdP; the victim's browser is sent the callback.
    const start = await attacker.open(`${env.gw.url}/__tollgate/login?return_to=/__tollgate/connections`, {
      stopAt: (u) => u.href.startsWith(env.idp!.authorizationUrl),
    });
    const state = start.url.searchParams.get("state")!;
    assert.ok(state);
    const page = await victim.open(`${env.gw.url}/__tollgate/login/callback?code=attacker-code&state=${state}&iss=${encodeURIComponent(env.idp!.issuer)}`);
    assert.equal(page.status, 400);
    assert.equal(victim.cookieNames("127.0.0.1").includes("tollgate_session"), false);
    // The state was consumed: the attacker cannot use it either.
    const again = await attacker.open(`${env.gw.url}/__tollgate/login/callback?code=x&state=${state}`);
    assert.equal(again.status, 400);
  });
});

// Logto serves its OpenID provider under `{endpoint}/oidc`, with oidc-provider's own endpoint
// names: a provider mounted the same way checks every URL the preset derives from the endpoint.
describe("mcp-logto-oauth-inbound (derived endpoints, real sign-in)", () => {
  let env: AuthEnv;
  let idp: TestIdp;
  before(async () => {
    idp = await startIdp({ mountPath: "/oidc" });
    env = await startAuthEnv({
      idp,
      preset: (i) => ({
        export: "McpLogtoOAuthInboundPolicy",
        policyType: "mcp-logto-oauth-inbound",
        options: { logtoEndpoint: new URL(i.issuer).origin },
      }),
    });
  });
  after(async () => {
    await env.close();
    await idp.close();
  });

  test("the user signs in at the derived authorize URL; the ID token's issuer and keys check out", async () => {
    assert.equal(idp.issuer, `${new URL(idp.issuer).origin}/oidc`);
    const { tokens } = await obtainTokens(env, env.routeA, "bob");
    const res = await mcpInitialize(env.routeA, String(tokens.access_token));
    assert.equal(res.status, 200);
    await res.text();
    const grants = await env.gw.services.store.list<{ user: { sub: string; data: Record<string, unknown> } }>("as-grants");
    assert.equal(grants.at(-1)!.value.user.sub, "bob");
    assert.equal(grants.at(-1)!.value.user.data.email, "bob@example.com");
  });
});
