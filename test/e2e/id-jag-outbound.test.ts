/**
 * Cross-app access, outbound (`authMode: "id-jag"`): a real IdP (oidc-provider) exchanges the
 * user's ID token for an ID-JAG (RFC 8693) and a real resource authorization server
 * (oidc-provider) trades it for an access token (RFC 7523). The user signs in to the gateway once
 * and reaches the upstream without any upstream consent.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { TestBrowser } from "../fixtures/oauth-upstream.js";
import { startIdJagIdp, type IdJagIdp } from "../fixtures/id-jag-idp.js";
import { startResourceAs, type TestResourceAs } from "../fixtures/id-jag-resource-as.js";
import { IDP_CLIENT, mcpInitialize, obtainTokens, signIn, startAuthEnv, type AuthEnv } from "./auth-server-helpers.js";

const RAS_CLIENT = { clientId: "tollgate-at-crm", clientSecret: "crm-client-secret-for-tests" };

async function rpc(res: Response): Promise<Record<string, unknown>> {
  const text = await res.text();
  const data = text.startsWith("{") ? text : (text.split("\n").find((l) => l.startsWith("data: ")) ?? "data: {}").slice(6);
  return JSON.parse(data) as Record<string, unknown>;
}

describe("cross-app access: outbound id-jag", () => {
  let idp: IdJagIdp;
  let ras: TestResourceAs;
  let env: AuthEnv;

  before(async () => {
    let rasIssuer = "";
    idp = await startIdJagIdp({ resourceClients: () => ({ [rasIssuer]: RAS_CLIENT.clientId }) });
    ras = await startResourceAs({
      idp,
      clients: [{ ...RAS_CLIENT, tokenEndpointAuthMethod: "client_secret_post" }],
      resource: () => env.upstream.url,
      allowedTenant: "acme",
    });
    rasIssuer = ras.issuer;
    env = await startAuthEnv({
      idp,
      extraPolicies: [
        {
          name: "mcp-token-exchange-crm",
          policyType: "mcp-token-exchange-inbound",
          handler: {
            module: "$import(@zuplo/runtime/mcp-gateway)",
            export: "McpTokenExchangeInboundPolicy",
            options: {
              displayName: "CRM",
              authMode: "id-jag",
              idJag: {
                scopes: ["crm.read", "crm.write"],
                idp: { tokenUrl: idp.tokenUrl, clientAuth: { method: "client_secret_basic", clientId: IDP_CLIENT.clientId, clientSecret: "$env(IDP_CLIENT_SECRET)" } },
                resourceAs: { tokenUrl: ras.tokenUrl, audience: ras.issuer, clientAuth: { method: "client_secret_post", ...RAS_CLIENT } },
              },
            },
          },
        },
      ],
      routeAExtraInbound: ["mcp-token-exchange-crm"],
    });
  });
  after(async () => {
    await env?.close();
    await ras?.close();
    await idp?.close();
  });

  test("a signed-in user reaches the upstream with the resource AS's token, no upstream consent", async () => {
    const { tokens } = await obtainTokens(env, env.routeA, "alice");
    const res = await mcpInitialize(env.routeA, String(tokens.access_token));
    assert.equal(res.status, 200);
    const init = await rpc(res);
    assert.ok(init.result, JSON.stringify(init));
    // The upstream saw a token of the resource AS for alice — never the gateway's.
    const seen = env.upstream.requests.at(-1)!.headers.authorization!;
    assert.match(seen, /^Bearer /);
    assert.notEqual(seen.slice(7), tokens.access_token);
    assert.equal(await ras.accountOf(seen.slice(7)), "alice");
    // The ID-JAG the resource AS was given.
    const jag = ras.presented.at(-1)!;
    assert.equal(jag.header.typ, "oauth-id-jag+jwt");
    assert.equal(jag.claims.iss, idp.issuer);
    assert.equal(jag.claims.aud, ras.issuer);
    assert.equal(jag.claims.client_id, RAS_CLIENT.clientId);
    assert.equal(jag.claims.resource, env.upstream.url);
    assert.equal(jag.claims.scope, "crm.read crm.write");
    assert.equal(jag.claims.sub, "alice");
    // A second call uses the cached token: no further exchange.
    const exchanges = idp.issued.length;
    const again = await mcpInitialize(env.routeA, String(tokens.access_token));
    assert.equal(again.status, 200);
    await again.text();
    assert.equal(idp.issued.length, exchanges);
    assert.equal(env.upstream.requests.at(-1)!.headers.authorization, seen);
  });

  test("a user of another organisation is refused by the resource AS; the gateway answers 403", async () => {
    const { tokens } = await obtainTokens(env, env.routeA, "carol");
    const before = env.upstream.requests.length;
    const res = await mcpInitialize(env.routeA, String(tokens.access_token));
    const body = await res.text();
    assert.equal(res.status, 403, body);
    assert.match(body, /upstream_access_denied/);
    assert.equal(ras.presented.at(-1)!.claims.tenant, "globex");
    assert.equal(env.upstream.requests.length, before);
  });

  test("an expired ID token sends the user through sign-in again, then the call succeeds", async () => {
    // ID tokens of 3 s are already too close to expiry to be exchanged (a user without a
    // cached upstream token, so the exchange is needed).
    idp.setIdTokenTtl(3);
    let t2: Record<string, unknown>;
    try {
      ({ tokens: t2 } = await obtainTokens(env, env.routeA, "dave"));
    } finally {
      idp.setIdTokenTtl(600);
    }
    const res = await mcpInitialize(env.routeA, String(t2.access_token));
    const answer = await rpc(res);
    const err = answer.error as { code: number; data: { authUrl: string } };
    assert.equal(err.code, -32042, JSON.stringify(answer));
    const login = new URL(err.data.authUrl);
    assert.equal(login.pathname, "/__tollgate/login");
    // Following the link signs the user in again (with a normal ID token this time).
    const browser = new TestBrowser();
    const page = await browser.open(login.href);
    const done = await signIn(browser, page, "dave");
    assert.equal(done.status, 200, done.text.slice(0, 300));
    const ok = await mcpInitialize(env.routeA, String(t2.access_token));
    assert.equal(ok.status, 200);
    assert.ok((await rpc(ok)).result);
  });

  test("nothing replayable reaches the logs", () => {
    const logs = env.gw.logs.join("\n");
    assert.ok(env.gw.logs.length > 0);
    // JWTs (ID tokens, ID-JAGs, assertions) start with a base64url JSON header.
    assert.doesNotMatch(logs, /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./);
    assert.ok(!logs.includes(RAS_CLIENT.clientSecret));
    assert.ok(!logs.includes(IDP_CLIENT.clientSecret));
  });
});
