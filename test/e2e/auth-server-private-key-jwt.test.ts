/**
 * `private_key_jwt` at the gateway's own token endpoint (RFC 7523 §2.2): a client registers its
 * public keys (`jwks`) by DCR and authenticates with a signed assertion. The happy path runs the
 * code exchange with oauth4webapi's client, as a real confidential client would; the refusals
 * use hand-built assertions so that each one breaks exactly one rule.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import * as oauth from "oauth4webapi";
import { TestBrowser } from "../fixtures/oauth-upstream.js";
import { authorizeUrl, browserAuthorize, mcpInitialize, pkce, registerClient, startAuthEnv, tokenRequest, type AuthEnv } from "./auth-server-helpers.js";

const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

describe("private_key_jwt clients of the gateway's authorization server", () => {
  let env: AuthEnv;
  let es: { privateKey: CryptoKey; jwk: Record<string, unknown> };
  let clientId: string;
  let tokenUrl: string;

  async function keyPair(alg: string, kid: string) {
    const { privateKey, publicKey } = await generateKeyPair(alg, alg === "EdDSA" ? { crv: "Ed25519" } : {});
    return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
  }

  function assertion(key: CryptoKey, alg: string, claims: { iss?: string; aud?: string; exp?: number; jti?: string; kid?: string } = {}) {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ jti: claims.jti ?? randomUUID() })
      .setProtectedHeader({ alg, kid: claims.kid ?? "k1" })
      .setIssuer(claims.iss ?? clientId)
      .setSubject(claims.iss ?? clientId)
      .setAudience(claims.aud ?? tokenUrl)
      .setIssuedAt(now)
      .setExpirationTime(claims.exp ?? now + 60)
      .sign(key);
  }

  /** A refresh with a made-up token: 401 invalid_client if authentication fails, else 400 invalid_grant. */
  async function tryAuth(form: Record<string, string>) {
    return tokenRequest(env, { grant_type: "refresh_token", refresh_token: "rt_not-a-real-token", ...form });
  }

  before(async () => {
    env = await startAuthEnv({ devLogin: true });
    tokenUrl = `${env.gw.url}/__tollgate/oauth/token`;
    es = await keyPair("ES256", "k1");
    const reg = await registerClient(env, { token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [es.jwk] } });
    assert.equal(reg.status, 201, JSON.stringify(reg.json));
    assert.equal(reg.json.client_secret, undefined, "no secret for a key-based client");
    assert.equal(reg.json.token_endpoint_auth_method, "private_key_jwt");
    clientId = String(reg.json.client_id);
  });
  after(async () => {
    await env.close();
  });

  test("metadata advertises it; oauth4webapi exchanges a code and refreshes with signed assertions", async () => {
    const issuer = new URL(env.gw.url);
    const discovery = await oauth.discoveryRequest(issuer, { algorithm: "oauth2", [oauth.allowInsecureRequests]: true });
    const as = await oauth.processDiscoveryResponse(issuer, discovery);
    assert.ok(as.token_endpoint_auth_methods_supported?.includes("private_key_jwt"));
    const client: oauth.Client = { client_id: clientId };
    const clientAuth = oauth.PrivateKeyJwt({ key: es.privateKey, kid: "k1" });

    const { verifier, challenge } = pkce();
    const { redirectedTo } = await browserAuthorize(env, new TestBrowser(), authorizeUrl(env, { client_id: clientId, code_challenge: challenge, state: "s1" }), { user: "pkj-user" });
    const params = oauth.validateAuthResponse(as, client, redirectedTo, "s1");
    const response = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, env.redirectUri, verifier, {
      additionalParameters: { resource: env.routeA },
      [oauth.allowInsecureRequests]: true,
    });
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
    const init = await mcpInitialize(env.routeA, tokens.access_token);
    assert.equal(init.status, 200);
    await init.text();

    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token!, { additionalParameters: { resource: env.routeA }, [oauth.allowInsecureRequests]: true }),
    );
    assert.ok(refreshed.access_token);
  });

  test("RSA and EdDSA keys work too; the assertion's aud may be the issuer", async () => {
    for (const alg of ["RS256", "PS384", "EdDSA"]) {
      const k = await keyPair(alg, `${alg}-key`);
      const reg = await registerClient(env, { token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [k.jwk] } });
      assert.equal(reg.status, 201, JSON.stringify(reg.json));
      const id = String(reg.json.client_id);
      const jwt = await new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg, kid: `${alg}-key` })
        .setIssuer(id)
        .setSubject(id)
        .setAudience(env.gw.url)
        .setExpirationTime("1m")
        .sign(k.privateKey);
      const res = await tryAuth({ client_id: id, client_assertion_type: ASSERTION_TYPE, client_assertion: jwt });
      assert.equal(res.json.error, "invalid_grant", `${alg}: authenticated, then the made-up refresh token is refused`);
    }
  });

  test("each broken rule is refused with invalid_client", async () => {
    const other = await keyPair("ES256", "k1");
    const now = Math.floor(Date.now() / 1000);
    const replayed = await assertion(es.privateKey, "ES256");
    assert.equal((await tryAuth({ client_assertion_type: ASSERTION_TYPE, client_assertion: replayed })).json.error, "invalid_grant", "first use is fine");
    const cases: Array<[string, Record<string, string>]> = [
      ["replayed jti", { client_assertion_type: ASSERTION_TYPE, client_assertion: replayed }],
      ["signed with an unregistered key", { client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion(other.privateKey, "ES256") }],
      ["audience of another server", { client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion(es.privateKey, "ES256", { aud: "https://other.example/token" }) }],
      ["expired", { client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion(es.privateKey, "ES256", { exp: now - 120 }) }],
      ["valid for an hour", { client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion(es.privateKey, "ES256", { exp: now + 3600 }) }],
      ["another client's id in iss/sub", { client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion(es.privateKey, "ES256", { iss: "tgc_someone-else" }) }],
      ["wrong assertion type", { client_assertion_type: "urn:example:other", client_assertion: await assertion(es.privateKey, "ES256") }],
      ["client_id alone (no assertion)", { client_id: clientId }],
      ["client_id differing from the assertion's", { client_id: "tgc_other", client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion(es.privateKey, "ES256") }],
    ];
    for (const [name, form] of cases) {
      const res = await tryAuth(form);
      assert.equal(res.status, 401, `${name}: ${JSON.stringify(res.json)}`);
      assert.equal(res.json.error, "invalid_client", name);
    }
  });

  test("registration checks the keys: public, inline, only with private_key_jwt", async () => {
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const privateJwk = await exportJWK(privateKey);
    const bad: Array<[string, Record<string, unknown>]> = [
      ["a private key", { token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [privateJwk] } }],
      ["no keys", { token_endpoint_auth_method: "private_key_jwt" }],
      ["jwks_uri", { token_endpoint_auth_method: "private_key_jwt", jwks_uri: "https://client.example/jwks.json" }],
      ["a symmetric key", { token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [{ kty: "oct", k: "c2VjcmV0" }] } }],
      ["jwks with another method", { token_endpoint_auth_method: "none", jwks: { keys: [es.jwk] } }],
    ];
    for (const [name, body] of bad) {
      const res = await registerClient(env, body);
      assert.equal(res.status, 400, name);
      assert.equal(res.json.error, "invalid_client_metadata", name);
    }
  });
});
