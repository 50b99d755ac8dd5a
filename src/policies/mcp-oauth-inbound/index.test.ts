import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import "./index.js";
import { testGateway } from "../../../test/helpers/test-kit.js";
import { makeKey, sign, startJwksServer, type JwksServer, type TestKey } from "../../../test/helpers/jwks-fixture.js";
import { getAuthServer } from "../../auth-server/server.js";
import { issueForCode } from "../../auth-server/tokens.js";
import { browserLoginConfig, devLoginEnabled } from "../../web/session.js";

describe("mcp-oauth-inbound resource server", () => {
  let key: TestKey;
  let jwks: JwksServer;
  let gw: Awaited<ReturnType<typeof testGateway>>;
  before(async () => {
    key = await makeKey("k1");
    jwks = await startJwksServer([key]);
    gw = await testGateway(
      [
        {
          name: "auth",
          exportName: "McpOAuthInboundPolicy",
          options: {
            oidc: { issuer: "https://idp.test/", jwksUrl: jwks.url, bearerAudience: "api://mcp" },
            gateway: { scopesSupported: ["mcp", "admin"], requiredScopes: ["admin"] },
          },
        },
      ],
      [{ path: "/mcp", operationId: "mcp", mcp: true, inbound: ["auth"] }],
      { settings: { devLogin: true } },
    );
  });
  after(async () => {
    await gw.close();
    await jwks.close();
  });

  const call = (token: string) =>
    gw.gateway.fetch(new Request("http://gw.test/mcp", { method: "POST", headers: { authorization: `Bearer ${token}` }, body: "{}" }));

  async function gatewayToken(scope: string): Promise<string> {
    const rc = getAuthServer(gw.services)!.resourceFor("http://gw.test/mcp")!;
    const tokens = await issueForCode(
      gw.services,
      {
        clientId: "c",
        redirectUri: "http://127.0.0.1/cb",
        redirectUriGiven: true,
        codeChallenge: "x",
        resource: "http://gw.test/mcp",
        scope,
        user: { sub: "alice", data: { email: "alice@example.com" } },
        expiresAt: 0,
        grantId: `g${String(Math.random()).slice(2, 23).padEnd(21, "0")}`,
      },
      rc,
      false,
    );
    return tokens.access_token;
  }

  test("a token lacking a required scope → 403 insufficient_scope; with it → request.user", async () => {
    const weak = await call(await gatewayToken("mcp"));
    assert.equal(weak.status, 403);
    assert.match(weak.headers.get("www-authenticate")!, /error="insufficient_scope", scope="admin"/);
    const ok = await call(await gatewayToken("mcp admin"));
    assert.equal(ok.status, 200);
    assert.deepEqual((await ok.json()).user, { sub: "alice", data: { email: "alice@example.com" } });
  });

  test("IdP JWTs for oidc.bearerAudience are accepted; other audiences are not", async () => {
    const good = await sign(key, { iss: "https://idp.test/", aud: "api://mcp", sub: "agent-7", scope: "mcp admin" });
    const res = await call(good);
    assert.equal(res.status, 200);
    assert.equal((await res.json()).user.sub, "agent-7");
    const other = await sign(key, { iss: "https://idp.test/", aud: "api://else", sub: "agent-7" });
    const bad = await call(other);
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get("www-authenticate")!, /error="invalid_token"/);
  });

  test("IdP JWTs must carry the route's required scopes too (scope or scp claim)", async () => {
    const none = await call(await sign(key, { iss: "https://idp.test/", aud: "api://mcp", sub: "agent-8" }));
    assert.equal(none.status, 403);
    assert.match(none.headers.get("www-authenticate")!, /error="insufficient_scope", scope="admin"/);
    const weak = await call(await sign(key, { iss: "https://idp.test/", aud: "api://mcp", sub: "agent-8", scope: "mcp" }));
    assert.equal(weak.status, 403);
    const scpArray = await call(await sign(key, { iss: "https://idp.test/", aud: "api://mcp", sub: "agent-8", scp: ["mcp", "admin"] }));
    assert.equal(scpArray.status, 200);
    const scpString = await call(await sign(key, { iss: "https://idp.test/", aud: "api://mcp", sub: "agent-8", scp: "admin" }));
    assert.equal(scpString.status, 200);
  });
});

test("two mcp-oauth-inbound policies that disagree on which clients may register fail the start", async () => {
  // One authorization server serves every route: if the first policy's DCR silently applied to
  // a route whose policy turned DCR off, anyone could register and get tokens for that route.
  const routes = [
    { path: "/open", operationId: "open", mcp: true, inbound: ["open"] },
    { path: "/strict", operationId: "strict", mcp: true, inbound: ["strict"] },
  ];
  const policies = [
    { name: "open", exportName: "McpOAuthInboundPolicy", options: {} },
    {
      name: "strict",
      exportName: "McpOAuthInboundPolicy",
      options: { gateway: { dcrEnabled: false, cimdEnabled: false }, clients: [{ clientId: "cli", redirectUris: ["http://127.0.0.1/cb"] }] },
    },
  ];
  await assert.rejects(testGateway(policies, routes, { settings: { devLogin: true } }), /authorization server/);
  // Policies that agree (or differ only in per-route settings) are fine.
  const same = await testGateway(
    [
      { name: "open", exportName: "McpOAuthInboundPolicy", options: { gateway: { accessTokenTtlSeconds: 300 } } },
      { name: "strict", exportName: "McpOAuthInboundPolicy", options: { gateway: { requiredScopes: ["mcp:tools"] } } },
    ],
    routes,
    { settings: { devLogin: true } },
  );
  await same.close();
});

describe("login settings take effect", () => {
  const route = [{ path: "/mcp", operationId: "mcp", mcp: true, inbound: ["auth"] }];

  test("a preset's browserLoginOverrides reach the browser login and the authorization requests' lifetime", async () => {
    const gw = await testGateway(
      [
        {
          name: "auth",
          exportName: "McpOktaOAuthInboundPolicy",
          options: {
            oktaDomain: "acme.okta.com",
            clientId: "c",
            clientSecret: "s",
            browserLoginOverrides: { remoteTimeoutMs: 1234, stateTtlSeconds: 321, sessionTtlSeconds: 4321, pkce: "none" },
          },
        },
      ],
      route,
    );
    try {
      const cfg = browserLoginConfig(gw.services)!;
      assert.deepEqual(
        [cfg.issuer, cfg.url, cfg.remoteTimeoutMs, cfg.stateTtlSeconds, cfg.sessionTtlSeconds, cfg.pkce],
        ["https://acme.okta.com", "https://acme.okta.com/oauth2/v1/authorize", 1234, 321, 4321, false],
      );
      assert.equal(getAuthServer(gw.services)!.config.pendingTtlSeconds, 321);
    } finally {
      await gw.close();
    }
  });

  test("the dev login set-up turns the dev login on (and production refuses it)", async () => {
    const options = {
      oidc: { issuer: "http://127.0.0.1:9000", jwksUrl: "http://127.0.0.1:9000/.well-known/jwks.json" },
      browserLogin: { url: "http://127.0.0.1:9000/__zuplo/oauth/dev-login" },
    };
    const gw = await testGateway([{ name: "auth", exportName: "McpOAuthInboundPolicy", options }], route);
    try {
      assert.equal(gw.services.settings.devLogin, false);
      assert.equal(devLoginEnabled(gw.services), true);
      assert.equal(browserLoginConfig(gw.services), undefined);
      assert.equal(getAuthServer(gw.services)!.config.pendingTtlSeconds, 900);
    } finally {
      await gw.close();
    }
    await assert.rejects(
      testGateway([{ name: "auth", exportName: "McpOAuthInboundPolicy", options }], route, { settings: { mode: "production" } }),
      /dev login, which production mode refuses/,
    );
  });
});
