/**
 * The gateway's authorization server, token by token: refresh rotation and reuse detection,
 * revocation, resource binding, code expiry and replay, PKCE, redirect URI checks, metadata.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { TestBrowser } from "../fixtures/oauth-upstream.js";
import {
  authorizeUrl,
  browserAuthorize,
  mcpInitialize,
  obtainTokens,
  pkce,
  registerClient,
  startAuthEnv,
  tokenRequest,
  type AuthEnv,
} from "./auth-server-helpers.js";

describe("mcp-oauth-inbound authorization server", () => {
  let env: AuthEnv;
  before(async () => {
    env = await startAuthEnv();
  });
  after(async () => {
    await env.close();
  });

  test("metadata: PRM per route and RFC 8414 document", async () => {
    const prm = await (await fetch(`${env.gw.url}/.well-known/oauth-protected-resource/mcp/a`)).json();
    assert.equal(prm.resource, env.routeA);
    // Each route is its own issuer (the route's URL), as Zuplo's gateway documents it.
    assert.deepEqual(prm.authorization_servers, [env.routeA]);
    assert.deepEqual(prm.scopes_supported, ["mcp:tools"]);
    assert.equal(prm.mcp_protocol_version, "2025-11-25");
    assert.equal(typeof prm.resource_name, "string");
    const res = await fetch(`${env.gw.url}/.well-known/oauth-authorization-server`);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    const md = await res.json();
    assert.equal(md.issuer, env.gw.url);
    assert.deepEqual(md.code_challenge_methods_supported, ["S256"]);
    assert.equal(md.client_id_metadata_document_supported, true);
    assert.equal(md.authorization_response_iss_parameter_supported, true);
    assert.ok(md.token_endpoint_auth_methods_supported.includes("none"));
    assert.deepEqual(md.grant_types_supported, ["authorization_code", "refresh_token"]);
    assert.equal(md.registration_endpoint, `${env.gw.url}/__tollgate/oauth/register`);
    const perRoute = await (await fetch(`${env.gw.url}/.well-known/oauth-authorization-server/mcp/b`)).json();
    assert.equal(perRoute.issuer, env.routeB);
    assert.equal(perRoute.authorization_endpoint, `${env.gw.url}/__tollgate/oauth/authorize/mcp/b`);
  });

  test("no token → 401 with resource_metadata; bad token → invalid_token", async () => {
    const none = await mcpInitialize(env.routeA, undefined);
    assert.equal(none.status, 401);
    assert.equal(
      none.headers.get("www-authenticate"),
      `Bearer resource_metadata="${env.gw.url}/.well-known/oauth-protected-resource/mcp/a"`,
    );
    const bad = await mcpInitialize(env.routeA, "tga_AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get("www-authenticate")!, /error="invalid_token"/);
  });

  test("DCR rejects unsupported scopes and bad redirect URIs", async () => {
    const scope = await registerClient(env, { scope: "mcp admin:everything" });
    assert.equal(scope.status, 400);
    assert.equal(scope.json.error, "invalid_client_metadata");
    for (const uri of ["http://evil.example/cb", "javascript:alert(1)", "https://x.example/cb#frag", "not a uri"]) {
      const r = await registerClient(env, { redirect_uris: [uri] });
      assert.equal(r.status, 400, uri);
      assert.equal(r.json.error, "invalid_redirect_uri", uri);
    }
    const ok = await registerClient(env, { scope: "mcp:tools", redirect_uris: ["https://app.example/cb", "cursor://anysphere.cursor-retrieval/oauth/callback"] });
    assert.equal(ok.status, 201);
    assert.match(String(ok.json.client_id), /^tgc_/);
    assert.equal(ok.json.client_secret, undefined);
  });

  test("code → tokens → MCP request; the IdP identity reaches request.user; the client's token never reaches the upstream", async () => {
    const { tokens } = await obtainTokens(env);
    assert.equal(tokens.token_type, "Bearer");
    assert.equal(tokens.expires_in, 900);
    assert.equal(tokens.scope, "mcp:tools");
    assert.match(String(tokens.access_token), /^tga_/);
    assert.match(String(tokens.refresh_token), /^tgr_/);
    const res = await mcpInitialize(env.routeA, String(tokens.access_token));
    assert.equal(res.status, 200);
    await res.text();
    const seen = env.upstream.requests.at(-1)!;
    assert.equal(seen.headers.authorization, undefined);
    // The store never holds the raw tokens.
    const all = await env.gw.services.store.list("as-access");
    assert.ok(all.length > 0);
    assert.ok(all.every((r) => !JSON.stringify(r).includes(String(tokens.access_token))));
    assert.ok(env.gw.logs.every((l) => !l.includes(String(tokens.access_token)) && !l.includes(String(tokens.refresh_token))));
    const sessions = await env.gw.services.store.list<{ user: { sub: string; data: Record<string, unknown> } }>("as-grants");
    const user = sessions.at(-1)!.value.user;
    assert.equal(user.sub, "alice");
    assert.equal(user.data.email, "alice@example.com");
    assert.deepEqual(user.data.groups, ["engineering"]);
  });

  test("a token for route A is rejected on route B (invalid_token)", async () => {
    const { tokens } = await obtainTokens(env, env.routeA);
    const res = await mcpInitialize(env.routeB, String(tokens.access_token));
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate")!, /error="invalid_token"/);
    assert.match(res.headers.get("www-authenticate")!, /oauth-protected-resource\/mcp\/b/);
  });

  test("mcp_auth_downstream_token_validated: once per access token at info (not per request), nothing secret", async () => {
    const { clientId, tokens } = await obtainTokens(env);
    const validated = (from: number) =>
      env.gw.logs
        .slice(from)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.event === "mcp_auth_downstream_token_validated");
    const mark = env.gw.logs.length;
    for (let i = 0; i < 3; i++) {
      const res = await mcpInitialize(env.routeA, String(tokens.access_token));
      assert.equal(res.status, 200);
      await res.text();
    }
    const first = validated(mark);
    // The gateway logs at info here: the later validations (debug) are not even built.
    assert.deepEqual(first.map((e) => e.level), [30], "one line for three requests");
    const e = first[0]!;
    assert.equal(e.subjectId, "alice");
    assert.equal(e.clientId, clientId);
    assert.equal(e.tokenIssuer, "gateway");
    assert.equal(e.operationId, "route-a");
    assert.equal(e.scopes, "mcp:tools");
    assert.equal(e.grantId, String(tokens.access_token).slice(4, 26));
    assert.equal(typeof e.requestId, "string");
    // A new access token (refresh) is reported again.
    const r = await tokenRequest(env, { grant_type: "refresh_token", refresh_token: String(tokens.refresh_token), client_id: clientId });
    const mark2 = env.gw.logs.length;
    const res = await mcpInitialize(env.routeA, String(r.json.access_token));
    assert.equal(res.status, 200);
    await res.text();
    assert.deepEqual(validated(mark2).map((x) => x.level), [30]);
    // Rejected tokens are not "validated".
    const mark3 = env.gw.logs.length;
    assert.equal((await mcpInitialize(env.routeB, String(r.json.access_token))).status, 401);
    assert.deepEqual(validated(mark3), []);
    for (const l of env.gw.logs) {
      for (const t of [tokens.access_token, tokens.refresh_token, r.json.access_token, r.json.refresh_token]) assert.ok(!l.includes(String(t)));
    }
  });

  test("refresh rotates; reusing a spent refresh token revokes the whole grant", async () => {
    const { clientId, tokens } = await obtainTokens(env);
    const r1 = await tokenRequest(env, { grant_type: "refresh_token", refresh_token: String(tokens.refresh_token), client_id: clientId });
    assert.equal(r1.status, 200);
    assert.notEqual(r1.json.refresh_token, tokens.refresh_token);
    assert.notEqual(r1.json.access_token, tokens.access_token);
    const r2 = await tokenRequest(env, { grant_type: "refresh_token", refresh_token: String(r1.json.refresh_token), client_id: clientId });
    assert.equal(r2.status, 200);
    // replay of the first (spent) refresh token
    const replay = await tokenRequest(env, { grant_type: "refresh_token", refresh_token: String(tokens.refresh_token), client_id: clientId });
    assert.equal(replay.status, 400);
    assert.equal(replay.json.error, "invalid_grant");
    // the whole family is gone: newest refresh token and access token too
    const newest = await tokenRequest(env, { grant_type: "refresh_token", refresh_token: String(r2.json.refresh_token), client_id: clientId });
    assert.equal(newest.json.error, "invalid_grant");
    assert.equal((await mcpInitialize(env.routeA, String(r2.json.access_token))).status, 401);
  });

  test("refresh by another client, or for another resource, is refused", async () => {
    const { clientId, tokens } = await obtainTokens(env);
    const other = String((await registerClient(env)).json.client_id);
    const wrongClient = await tokenRequest(env, { grant_type: "refresh_token", refresh_token: String(tokens.refresh_token), client_id: other });
    assert.equal(wrongClient.json.error, "invalid_grant");
    const wrongResource = await tokenRequest(env, {
      grant_type: "refresh_token",
      refresh_token: String(tokens.refresh_token),
      client_id: clientId,
      resource: env.routeB,
    });
    assert.equal(wrongResource.json.error, "invalid_target");
  });

  test("revocation (RFC 7009): revoking the refresh token ends the grant", async () => {
    const { clientId, tokens } = await obtainTokens(env);
    assert.equal((await mcpInitialize(env.routeA, String(tokens.access_token))).status, 200);
    const rev = await tokenRequest(env, { token: String(tokens.refresh_token), client_id: clientId }, "revoke");
    assert.equal(rev.status, 200);
    assert.equal((await mcpInitialize(env.routeA, String(tokens.access_token))).status, 401);
    const again = await tokenRequest(env, { grant_type: "refresh_token", refresh_token: String(tokens.refresh_token), client_id: clientId });
    assert.equal(again.json.error, "invalid_grant");
    // unknown tokens are fine
    assert.equal((await tokenRequest(env, { token: "nonsense", client_id: clientId }, "revoke")).status, 200);
  });

  test("codes: single use (replay revokes the grant), bad PKCE refused, expiry after 60 s", async () => {
    const clientId = String((await registerClient(env)).json.client_id);
    const browser = new TestBrowser();
    const get = async () => {
      const p = pkce();
      const { redirectedTo } = await browserAuthorize(env, browser, authorizeUrl(env, { client_id: clientId, code_challenge: p.challenge }));
      assert.equal(redirectedTo.searchParams.get("iss"), env.gw.url);
      assert.equal(redirectedTo.searchParams.get("state"), "st-123");
      return { code: redirectedTo.searchParams.get("code")!, ...p };
    };
    const exchange = (code: string, verifier: string) =>
      tokenRequest(env, { grant_type: "authorization_code", code, code_verifier: verifier, client_id: clientId, redirect_uri: env.redirectUri });

    const a = await get();
    const first = await exchange(a.code, a.verifier);
    assert.equal(first.status, 200);
    const replay = await exchange(a.code, a.verifier);
    assert.equal(replay.json.error, "invalid_grant");
    assert.equal((await mcpInitialize(env.routeA, String(first.json.access_token))).status, 401, "replay revokes the grant");

    const b = await get();
    const badPkce = await exchange(b.code, pkce().verifier);
    assert.equal(badPkce.json.error, "invalid_grant");
    assert.match(String(badPkce.json.error_description), /PKCE/);

    const c = await get();
    const realNow = env.gw.services.now;
    env.gw.services.now = () => realNow() + 61_000;
    try {
      const expired = await exchange(c.code, c.verifier);
      assert.equal(expired.json.error, "invalid_grant");
    } finally {
      env.gw.services.now = realNow;
    }
  });

  test("authorize: unregistered redirect_uri shows an error page and never redirects", async () => {
    const clientId = String((await registerClient(env)).json.client_id);
    const res = await fetch(
      authorizeUrl(env, { client_id: clientId, code_challenge: pkce().challenge, redirect_uri: "https://evil.example/steal" }),
      { redirect: "manual" },
    );
    assert.equal(res.status, 400);
    assert.equal(res.headers.get("location"), null);
    assert.match(res.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
    assert.match(await res.text(), /not registered/);
    const unknownClient = await fetch(authorizeUrl(env, { client_id: "tgc_nope", code_challenge: pkce().challenge }), { redirect: "manual" });
    assert.equal(unknownClient.status, 400);
    assert.equal(unknownClient.headers.get("location"), null);
  });

  test("authorize: missing PKCE, plain PKCE, missing or foreign resource → error redirect with iss", async () => {
    const clientId = String((await registerClient(env)).json.client_id);
    const cases: Array<[Record<string, string | undefined>, string]> = [
      [{ code_challenge: undefined }, "invalid_request"],
      [{ code_challenge: pkce().challenge, code_challenge_method: "plain" }, "invalid_request"],
      [{ code_challenge: pkce().challenge, resource: undefined }, "invalid_target"],
      [{ code_challenge: pkce().challenge, resource: "https://elsewhere.example/mcp" }, "invalid_target"],
      [{ code_challenge: pkce().challenge, scope: "root" }, "invalid_scope"],
    ];
    for (const [params, error] of cases) {
      const res = await fetch(authorizeUrl(env, { client_id: clientId, ...params }), { redirect: "manual" });
      assert.equal(res.status, 303, JSON.stringify(params));
      const loc = new URL(res.headers.get("location")!);
      assert.ok(loc.href.startsWith(env.redirectUri));
      assert.equal(loc.searchParams.get("error"), error, JSON.stringify(params));
      assert.equal(loc.searchParams.get("iss"), env.gw.url);
      assert.equal(loc.searchParams.get("state"), "st-123");
    }
  });

  test("consent: cancel sends access_denied; a forged consent POST is refused", async () => {
    const clientId = String((await registerClient(env)).json.client_id);
    const browser = new TestBrowser();
    const { redirectedTo, consent } = await browserAuthorize(
      env,
      browser,
      authorizeUrl(env, { client_id: clientId, code_challenge: pkce().challenge }),
      { decision: "cancel" },
    );
    assert.equal(redirectedTo.searchParams.get("error"), "access_denied");
    assert.equal(redirectedTo.searchParams.get("code"), null);
    assert.match(consent.headers.get("content-security-policy")!, /form-action 'self' http:\/\/127\.0\.0\.1:\d+/);
    assert.match(consent.text, /127\.0\.0\.1:\d+<\/span>/, "redirect host shown");
    // a new request, but the POST carries a wrong CSRF token
    const page = await browser.open(authorizeUrl(env, { client_id: clientId, code_challenge: pkce().challenge }));
    assert.ok(page.url.pathname.endsWith("/oauth/setup"));
    const forged = await browser.submit(page, { csrf: "forged" }, { button: { name: "decision", value: "approve" } });
    assert.equal(forged.status, 403);
  });
});
