/**
 * Cross-app access, inbound (`idJag` on the MCP OAuth policy): an MCP client (the requesting
 * application) signs its user in at the organisation's IdP (a real oidc-provider), exchanges
 * the ID token there for an ID-JAG addressed to the gateway route (RFC 8693), and presents it
 * at the gateway's token endpoint with the JWT bearer grant (RFC 7523). The gateway answers
 * with its own route-bound access token, which works on the MCP route — no browser at the
 * gateway, no consent page. Each way an assertion can be wrong is refused on its own.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { TestBrowser } from "../fixtures/oauth-upstream.js";
import { ID_JAG_TYPE, ID_TOKEN_TYPE, startIdJagIdp, TOKEN_EXCHANGE, type IdJagIdp } from "../fixtures/id-jag-idp.js";
import { mcpInitialize, pkce, registerClient, signIn, startAuthEnv, type AuthEnv } from "./auth-server-helpers.js";

const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/** The MCP client at the gateway (a configured confidential client). */
const AGENT = { clientId: "xaa-agent", clientSecret: "xaa-agent-secret-for-tests-0123456789" };
/** The same application at the IdP. */
const AGENT_AT_IDP = { clientId: "xaa-agent-at-idp", clientSecret: "xaa-agent-idp-secret-for-tests" };

const basic = (c: { clientId: string; clientSecret: string }) => `Basic ${Buffer.from(`${c.clientId}:${c.clientSecret}`).toString("base64")}`;

/** True when some string in `doc` is `url` or starts with `url/`. */
function mentions(doc: unknown, url: string): boolean {
  const text = JSON.stringify(doc);
  return text.includes(`"${url}"`) || text.includes(`"${url}/`) || text.includes(`${url}#`);
}

async function postForm(url: string, form: Record<string, string>, authorization?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...(authorization ? { authorization } : {}) },
    body: new URLSearchParams(form),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

describe("cross-app access: inbound ID-JAG grant", () => {
  let idp: IdJagIdp;
  let untrusted: IdJagIdp;
  let env: AuthEnv;
  let tokenUrl: string;

  before(async () => {
    idp = await startIdJagIdp({ resourceClients: () => ({ [env.routeA]: AGENT.clientId, [env.routeB]: AGENT.clientId }) });
    untrusted = await startIdJagIdp({ resourceClients: () => ({}) });
    env = await startAuthEnv({
      idp,
      authOptions: {
        // The trusted issuer is the browser login's IdP (no issuer/jwksUrl given).
        idJag: { enabled: true, trustedIssuers: [{ expectedClientIds: [AGENT.clientId] }] },
        clients: [{ ...AGENT, clientName: "XAA agent", redirectUris: ["http://127.0.0.1/unused"] }],
      },
    });
    idp.addClient({ ...AGENT_AT_IDP, redirectUris: [env.redirectUri] });
    tokenUrl = `${env.gw.url}/__tollgate/oauth/token`;
  });
  after(async () => {
    await env?.close();
    await untrusted?.close();
    await idp?.close();
  });

  /** The agent's own sign-in at the IdP (authorization code + PKCE): the user's ID token for the agent. */
  async function agentIdToken(user: string): Promise<string> {
    const { verifier, challenge } = pkce();
    const u = new URL(idp.authorizationUrl);
    for (const [k, v] of Object.entries({
      client_id: AGENT_AT_IDP.clientId,
      response_type: "code",
      redirect_uri: env.redirectUri,
      scope: "openid email",
      state: "s1",
      nonce: "n1",
      code_challenge: challenge,
      code_challenge_method: "S256",
    })) u.searchParams.set(k, v);
    const browser = new TestBrowser();
    const stopAt = (x: URL) => x.href.startsWith(env.redirectUri);
    let page = await browser.open(u.href, { stopAt });
    if (!stopAt(page.url)) page = await signIn(browser, page, user, stopAt);
    const code = page.url.searchParams.get("code");
    assert.ok(code, `no code from the IdP: ${page.url.href} ${page.text.slice(0, 200)}`);
    const t = await postForm(idp.tokenUrl, { grant_type: "authorization_code", code, redirect_uri: env.redirectUri, code_verifier: verifier }, basic(AGENT_AT_IDP));
    assert.equal(t.status, 200, JSON.stringify(t.json));
    return String(t.json.id_token);
  }

  /** The agent's RFC 8693 exchange at the IdP: an ID-JAG for the gateway route `resource`. */
  async function exchangeAtIdp(idToken: string, resource: string): Promise<string> {
    const t = await postForm(
      idp.tokenUrl,
      {
        grant_type: TOKEN_EXCHANGE,
        subject_token: idToken,
        subject_token_type: ID_TOKEN_TYPE,
        requested_token_type: ID_JAG_TYPE,
        audience: resource,
        resource,
        scope: "mcp:tools",
      },
      basic(AGENT_AT_IDP),
    );
    assert.equal(t.status, 200, JSON.stringify(t.json));
    assert.equal(t.json.issued_token_type, ID_JAG_TYPE);
    return String(t.json.access_token);
  }

  const present = (assertion: string, extra: Record<string, string> = {}, client = AGENT) =>
    postForm(tokenUrl, { grant_type: JWT_BEARER, assertion, ...extra }, basic(client));

  test("an ID-JAG from the trusted IdP gets a gateway token that works on its MCP route only", async () => {
    const jag = await exchangeAtIdp(await agentIdToken("alice"), env.routeA);
    const t = await present(jag);
    assert.equal(t.status, 200, JSON.stringify(t.json));
    assert.equal(t.json.token_type, "Bearer");
    assert.equal(t.json.scope, "mcp:tools");
    assert.equal(t.json.resource, env.routeA);
    assert.equal(t.json.refresh_token, undefined, "the IdP stays in charge: no refresh token");
    assert.match(String(t.json.access_token), /^tga_/);
    const res = await mcpInitialize(env.routeA, String(t.json.access_token));
    assert.equal(res.status, 200);
    await res.text();
    // The upstream never sees the gateway's token.
    assert.notEqual(env.upstream.requests.at(-1)?.headers.authorization, `Bearer ${t.json.access_token}`);
    const other = await mcpInitialize(env.routeB, String(t.json.access_token));
    assert.equal(other.status, 401);
    await other.text();
    // Issued like the other grants: an audit event with the mapped subject (iss_prefix).
    const issued = env.gw.logs
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.event === "mcp_auth_downstream_token_issued" && l.grantType === JWT_BEARER);
    assert.ok(issued, "audit event");
    assert.equal(issued.subjectId, `${idp.issuer}#alice`);
    assert.equal(issued.clientId, AGENT.clientId);
    assert.equal(issued.resource, env.routeA);
    // The same assertion is good once.
    const replay = await present(jag);
    assert.deepEqual([replay.status, replay.json.error], [400, "invalid_grant"]);
  });

  test("an ID-JAG from an issuer that is not trusted is refused", async () => {
    const jag = await untrusted.sign({ sub: "alice", aud: env.routeA, client_id: AGENT.clientId, resource: env.routeA, scope: "mcp:tools" });
    const t = await present(jag);
    assert.deepEqual([t.status, t.json.error], [400, "invalid_grant"]);
    assert.match(String(t.json.error_description), /not trusted/);
    assert.ok(!mentions(t.json, idp.issuer), "the trusted issuers are not named");
  });

  test("an ID-JAG issued for another client is refused", async () => {
    const jag = await idp.sign({ sub: "alice", aud: env.routeA, client_id: "some-other-agent", resource: env.routeA, scope: "mcp:tools" });
    const t = await present(jag);
    assert.deepEqual([t.status, t.json.error], [400, "invalid_grant"]);
    assert.match(String(t.json.error_description), /another client/);
  });

  test("an ID-JAG for another audience (the other route's issuer) is refused", async () => {
    const jag = await exchangeAtIdp(await agentIdToken("alice"), env.routeB);
    const t = await present(jag, { resource: env.routeA });
    assert.deepEqual([t.status, t.json.error], [400, "invalid_grant"]);
    assert.match(String(t.json.error_description), /another audience/);
  });

  test("an expired ID-JAG is refused", async () => {
    const jag = await idp.sign({ sub: "alice", aud: env.routeA, client_id: AGENT.clientId, resource: env.routeA }, { expiresIn: -120 });
    const t = await present(jag);
    assert.deepEqual([t.status, t.json.error], [400, "invalid_grant"]);
    assert.match(String(t.json.error_description), /expired/);
  });

  test("client authentication: a wrong secret is invalid_client, a public client is unauthorized_client", async () => {
    const jag = await idp.sign({ sub: "alice", aud: env.routeA, client_id: AGENT.clientId, resource: env.routeA });
    const wrong = await present(jag, {}, { ...AGENT, clientSecret: "not-the-secret" });
    assert.deepEqual([wrong.status, wrong.json.error], [401, "invalid_client"]);
    const reg = await registerClient(env);
    const pub = await postForm(tokenUrl, { grant_type: JWT_BEARER, assertion: jag, client_id: String(reg.json.client_id) });
    assert.deepEqual([pub.status, pub.json.error], [400, "unauthorized_client"]);
  });

  test("a private_key_jwt client counts as confidential; one outside expectedClientIds is unauthorized_client", async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const reg = await registerClient(env, { token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" }] } });
    assert.equal(reg.status, 201, JSON.stringify(reg.json));
    const clientId = String(reg.json.client_id);
    const now = Math.floor(Date.now() / 1000);
    const clientAssertion = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(tokenUrl)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(privateKey);
    const jag = await idp.sign({ sub: "alice", aud: env.routeA, client_id: clientId, resource: env.routeA });
    const t = await postForm(tokenUrl, {
      grant_type: JWT_BEARER,
      assertion: jag,
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: clientAssertion,
    });
    assert.deepEqual([t.status, t.json.error], [400, "unauthorized_client"]);
    assert.match(String(t.json.error_description), /from this issuer/, "authenticated, then refused by expectedClientIds");
  });

  test("the grant is advertised where enabled; the trusted issuers are never published", async () => {
    for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server/mcp/a"]) {
      const meta = (await (await fetch(`${env.gw.url}${path}`)).json()) as Record<string, unknown>;
      assert.ok((meta.grant_types_supported as string[]).includes(JWT_BEARER), path);
      assert.ok(!mentions(meta, idp.issuer), path);
    }
  });

  test("nothing replayable reaches the logs", () => {
    const logs = env.gw.logs.join("\n");
    assert.match(logs, /identity assertion refused/);
    assert.doesNotMatch(logs, /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./);
    assert.ok(!logs.includes(AGENT.clientSecret));
  });
});

describe("cross-app access: inbound ID-JAG grant not enabled", () => {
  let env: AuthEnv;
  before(async () => {
    env = await startAuthEnv({ devLogin: true, authOptions: { idJag: { enabled: false }, clients: [{ ...AGENT, redirectUris: ["http://127.0.0.1/unused"] }] } });
  });
  after(async () => {
    await env?.close();
  });

  test("not advertised, and refused as an unsupported grant type", async () => {
    for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server/mcp/a"]) {
      const meta = (await (await fetch(`${env.gw.url}${path}`)).json()) as Record<string, unknown>;
      assert.deepEqual(meta.grant_types_supported, ["authorization_code", "refresh_token"], path);
    }
    const t = await postForm(`${env.gw.url}/__tollgate/oauth/token`, { grant_type: JWT_BEARER, assertion: "a.b.c", resource: env.routeA }, basic(AGENT));
    assert.deepEqual([t.status, t.json.error], [400, "unsupported_grant_type"]);
  });
});
