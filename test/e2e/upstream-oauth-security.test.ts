/**
 * Attacks on the connect flow, against real demo upstreams and a gateway with a browser login:
 *
 * - account-linking CSRF: the binding cookie of the attacker's own flow, planted in a victim's
 *   browser, must not bind the victim's upstream account to the attacker;
 * - mix-up between two upstreams: a callback carrying one upstream's `state` at the other
 *   upstream's redirect URI exchanges no code anywhere and does not use the state up.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startGateway, writeProject, type RunningGateway } from "../helpers/harness.js";
import { startOAuthUpstream, TestBrowser, type OAuthUpstream } from "../fixtures/oauth-upstream.js";
import { AUDIENCE, IDP_ISSUER, connectLink, sdkClient, startIdentity, whoami, type Identity } from "./upstream-oauth-kit.js";

/** Two per-user upstreams, `alpha` and `beta`, each on its own route. */
function twoUpstreamProject(jwksUrl: string, alpha: string, beta: string): Record<string, string> {
  const exchange = (id: string, displayName: string) => ({
    name: `mcp-token-exchange-${id}`,
    policyType: "mcp-token-exchange-inbound",
    handler: {
      module: "$import(@zuplo/runtime/mcp-gateway)",
      export: "McpTokenExchangeInboundPolicy",
      options: { displayName, authMode: "user-oauth" },
    },
  });
  const route = (id: string, upstreamUrl: string) => ({
    "get,post,delete": {
      operationId: `${id}-mcp`,
      "x-zuplo-route": {
        corsPolicy: "none",
        handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: "McpProxyHandler", options: { rewritePattern: upstreamUrl } },
        policies: { inbound: ["jwt-auth", `mcp-token-exchange-${id}`] },
      },
    },
  });
  const policies = {
    policies: [
      {
        name: "jwt-auth",
        policyType: "open-id-jwt-auth-inbound",
        handler: { module: "$import(@zuplo/runtime)", export: "OpenIdJwtInboundPolicy", options: { issuer: IDP_ISSUER, audience: AUDIENCE, jwkUrl: jwksUrl } },
      },
      exchange("alpha", "Alpha"),
      exchange("beta", "Beta"),
    ],
  };
  const routes = { openapi: "3.1.0", info: { title: "e2e", version: "1" }, paths: { "/mcp/alpha": route("alpha", alpha), "/mcp/beta": route("beta", beta) } };
  return { "config/policies.json": JSON.stringify(policies), "config/routes.oas.json": JSON.stringify(routes) };
}

let identity: Identity;
let alpha: OAuthUpstream;
let beta: OAuthUpstream;
let gw: RunningGateway;
before(async () => {
  identity = await startIdentity();
  alpha = await startOAuthUpstream({ name: "Alpha" });
  beta = await startOAuthUpstream({ name: "Beta" });
  gw = await startGateway({ projectDir: await writeProject(twoUpstreamProject(identity.jwks.url, alpha.mcpUrl, beta.mcpUrl)), settings: { devLogin: true } });
});
after(async () => {
  await gw?.close();
  await alpha?.close();
  await beta?.close();
  await identity?.close();
});

const linkFor = (user: string, id: string) => connectLink(gw.url, identity, user, `/mcp/${id}`);

/** The `name=value` of the cookie `prefix…` a response sets. */
function setCookie(res: Response, prefix: string): string {
  const pair = res.headers
    .getSetCookie()
    .find((c) => c.startsWith(prefix))
    ?.split(";")[0];
  assert.ok(pair, `a ${prefix} cookie is set`);
  return pair;
}

/**
 * Signs `user` in with the dev login, opens the connect link and returns the redirect to the
 * upstream's authorization endpoint, with the session and browser-binding cookies (`name=value`).
 */
async function startFlow(browser: TestBrowser, user: string, id: string): Promise<{ authorize: URL; session: string; binding: string }> {
  const login = await browser.open(await linkFor(user, id));
  const loginForm = login.forms[0]!;
  const signedIn = await browser.fetch(loginForm.action, { method: "POST", body: new URLSearchParams({ ...loginForm.fields, username: user }) });
  const session = setCookie(signedIn, "tollgate_session=");
  // Signed in as the link's user: the connect link redirects straight to the upstream.
  const started = await browser.fetch(new URL(signedIn.headers.get("location")!, loginForm.action));
  assert.equal(started.status, 302);
  return { authorize: new URL(started.headers.get("location")!), session, binding: setCookie(started, "tollgate_connect_") };
}

test("a victim without a gateway session cannot complete the attacker's flow, even with its binding cookie planted", async () => {
  // The attacker starts a connection for their own subject and stops at the upstream.
  const { authorize, binding } = await startFlow(new TestBrowser(), "mallory", "alpha");
  // The victim (not signed in to the gateway) is lured through the upstream's consent; the
  // attacker has planted the binding cookie in the victim's browser (sibling-domain cookie
  // tossing, or a plain-http answer on the gateway's host).
  const callback = await alpha.login(authorize, "victim", new TestBrowser());
  assert.ok(callback.pathname.endsWith("/connections/alpha/callback"));
  const res = await fetch(callback, { headers: { cookie: binding }, redirect: "manual" });
  const text = await res.text();
  assert.equal(res.status, 403, text.slice(0, 300));
  assert.doesNotMatch(text, /is connected/);
  // Nothing was bound to the attacker's subject.
  await linkFor("mallory", "alpha");
});

test("one upstream's state at another upstream's callback exchanges no code and does not use the state up", async () => {
  const browser = new TestBrowser();
  const { authorize, session, binding } = await startFlow(browser, "alice", "alpha");
  const state = authorize.searchParams.get("state")!;
  const codeRequests = () => [alpha, beta].map((u) => u.tokenRequestLog.filter((r) => r.grantType === "authorization_code").length);
  const before = codeRequests();
  // Alice's session and the flow's binding cookie arrive at beta's redirect URI with alpha's
  // state and a code, with and without beta's issuer.
  for (const iss of [beta.issuer, undefined]) {
    const misdirected = new URL(`${gw.url}/__tollgate/auth/connections/beta/callback`);
    misdirected.searchParams.set("state", state);
    misdirected.searchParams.set("code", "code-from-somewhere");
    if (iss) misdirected.searchParams.set("iss", iss);
    const res = await fetch(misdirected, { headers: { cookie: `${session}; ${binding}` }, redirect: "manual" });
    assert.equal(res.status, 400, await res.text());
  }
  assert.deepEqual(codeRequests(), before, "no code exchanged at either authorization server");
  // The real flow still completes at alpha's callback.
  const callback = await alpha.login(authorize, "alice", browser);
  const done = await browser.open(callback);
  assert.equal(done.status, 200, done.text.slice(0, 300));
  assert.match(done.text, /Alpha is connected/);
  const c = sdkClient(gw.url, await identity.token("alice"), "/mcp/alpha");
  await c.connect();
  assert.equal(await whoami(c.client), "alice");
  await c.close();
});
