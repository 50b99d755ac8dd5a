import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import "./index.js";
import { createOpenIdJwtPolicy } from "./index.js";
import { auth0JwtOptionsSchema, auth0ToOpenId, openIdJwtOptionsSchema } from "./options.js";
import { makeKey, sign, startJwksServer, type JwksServer, type TestKey } from "../../../test/helpers/jwks-fixture.js";
import { testClock, testGateway, testServices } from "../../../test/helpers/test-kit.js";
import { browserLoginConfig } from "../../web/session.js";

const ISSUER = "https://idp.test/";
const AUD = "https://gw.test/mcp/x";

let key1: TestKey;
let key2: TestKey;
let jwks: JwksServer;

before(async () => {
  key1 = await makeKey("k1", "RS256");
  key2 = await makeKey("k2", "ES256");
  jwks = await startJwksServer([key1]);
});
after(() => jwks.close());

function b64url(v: unknown) {
  return Buffer.from(JSON.stringify(v)).toString("base64url");
}

async function gatewayWith(extra: Record<string, unknown> = {}, clock = testClock()) {
  return testGateway(
    [
      {
        name: "jwt",
        exportName: "OpenIdJwtInboundPolicy",
        options: { issuer: ISSUER, audience: AUD, jwkUrl: jwks.url, ...extra },
      },
    ],
    [
      { path: "/mcp/x", inbound: ["jwt"], mcp: true, operationId: "mcp-x" },
      { path: "/mcp/t/{tenant}", inbound: ["jwt"], mcp: true, operationId: "mcp-t" },
      { path: "/api", inbound: ["jwt"], operationId: "api" },
    ],
    { clock },
  );
}

const call = (gw: Awaited<ReturnType<typeof gatewayWith>>, path: string, token?: string) =>
  gw.gateway.fetch(
    new Request(`http://gw.test${path}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }),
  );

describe("open-id-jwt-auth-inbound", () => {
  test("a valid token sets request.user = { sub, data: claims }", async () => {
    const clock = testClock();
    const gw = await gatewayWith({}, clock);
    try {
      const token = await sign(key1, { iss: ISSUER, aud: AUD, sub: "alice", email: "a@x" }, { nowMs: clock.now() });
      const res = await call(gw, "/mcp/x", token);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { user: { sub: string; data: Record<string, unknown> } };
      assert.equal(body.user.sub, "alice");
      assert.equal(body.user.data.email, "a@x");
      assert.equal(body.user.data.iss, ISSUER);
    } finally {
      await gw.close();
    }
  });

  test("expired (beyond the 30 s tolerance), wrong aud, wrong iss: 401 invalid_token", async () => {
    const clock = testClock();
    const gw = await gatewayWith({}, clock);
    try {
      const now = clock.now();
      const cases = [
        await sign(key1, { iss: ISSUER, aud: AUD, sub: "a" }, { nowMs: now - 600_000, expSecondsFromNow: 500 }),
        await sign(key1, { iss: ISSUER, aud: "https://other.api/", sub: "a" }, { nowMs: now }),
        await sign(key1, { iss: "https://evil.test/", aud: AUD, sub: "a" }, { nowMs: now }),
        "not-a-jwt",
      ];
      for (const token of cases) {
        const res = await call(gw, "/api", token);
        assert.equal(res.status, 401);
        assert.equal(res.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
        assert.equal(res.headers.get("content-type"), "application/problem+json");
        const text = await res.text();
        assert.ok(!text.includes(token), "the token is not echoed");
      }
      // Within the clock tolerance an expired token still passes.
      const justExpired = await sign(key1, { iss: ISSUER, aud: AUD, sub: "a" }, { nowMs: now - 20_000, expSecondsFromNow: 10 });
      assert.equal((await call(gw, "/api", justExpired)).status, 200);
    } finally {
      await gw.close();
    }
  });

  test("iat or nbf in the future beyond the 30 s tolerance: 401 invalid_token; within it: accepted", async () => {
    const clock = testClock();
    const gw = await gatewayWith({}, clock);
    try {
      const now = clock.now();
      const claims = { iss: ISSUER, aud: AUD, sub: "a" };
      const refused = [
        // issued 5 minutes from now (exp 5 minutes after that)
        await sign(key1, claims, { nowMs: now + 300_000 }),
        await sign(key1, claims, { nowMs: now + 31_000 }),
        await sign(key1, { ...claims, nbf: Math.floor(now / 1000) + 300 }, { nowMs: now }),
      ];
      for (const token of refused) {
        const res = await call(gw, "/api", token);
        assert.equal(res.status, 401);
        assert.equal(res.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
        assert.equal((await res.json()).code, "invalid_token");
      }
      assert.equal((await call(gw, "/api", await sign(key1, claims, { nowMs: now + 20_000 }))).status, 200);
      const nbfSoon = await sign(key1, { ...claims, nbf: Math.floor(now / 1000) + 20 }, { nowMs: now });
      assert.equal((await call(gw, "/api", nbfSoon)).status, 200);
      // Once the clock has reached it, the same token is accepted.
      clock.advance(300_000);
      assert.equal((await call(gw, "/api", refused[0]!)).status, 200);
    } finally {
      await gw.close();
    }
  });

  test("alg none and HS256 tokens are rejected", async () => {
    const gw = await gatewayWith();
    try {
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: ISSUER, aud: AUD, sub: "mallory", exp: now + 300 };
      const none = `${b64url({ alg: "none", typ: "JWT" })}.${b64url(claims)}.`;
      const hsInput = `${b64url({ alg: "HS256", kid: "k1" })}.${b64url(claims)}`;
      const hs = `${hsInput}.${createHmac("sha256", JSON.stringify(key1.jwk)).update(hsInput).digest("base64url")}`;
      for (const token of [none, hs]) {
        const res = await call(gw, "/api", token);
        assert.equal(res.status, 401);
      }
    } finally {
      await gw.close();
    }
  });

  test("unknown kid triggers a JWKS refetch that picks up a rotated key", async () => {
    const clock = testClock();
    const gw = await gatewayWith({ jwksCooldownSeconds: 0 }, clock);
    try {
      jwks.setKeys([key1]);
      const t1 = await sign(key1, { iss: ISSUER, aud: AUD, sub: "a" }, { nowMs: clock.now() });
      assert.equal((await call(gw, "/api", t1)).status, 200);
      const before = jwks.hits();
      jwks.setKeys([key1, key2]);
      const t2 = await sign(key2, { iss: ISSUER, aud: AUD, sub: "b" }, { nowMs: clock.now() });
      const res = await call(gw, "/api", t2);
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { user: { sub: string } }).user.sub, "b");
      assert.equal(jwks.hits(), before + 1);
    } finally {
      jwks.setKeys([key1]);
      await gw.close();
    }
  });

  test("within the cooldown an unknown kid does not refetch", async () => {
    const gw = await gatewayWith({ jwksCooldownSeconds: 3600 });
    try {
      jwks.setKeys([key1]);
      const t1 = await sign(key1, { iss: ISSUER, aud: AUD, sub: "a" });
      assert.equal((await call(gw, "/api", t1)).status, 200);
      const before = jwks.hits();
      const stranger = await makeKey("k-unknown");
      for (let i = 0; i < 5; i++) {
        const t = await sign(stranger, { iss: ISSUER, aud: AUD, sub: "x" });
        assert.equal((await call(gw, "/api", t)).status, 401);
      }
      assert.equal(jwks.hits(), before);
    } finally {
      await gw.close();
    }
  });

  test("MCP routes: 401 challenge carries resource_metadata; the PRM document is served with CORS", async () => {
    const gw = await gatewayWith({ scopesSupported: ["mcp:read", "mcp:write"] });
    try {
      const missing = await call(gw, "/mcp/x");
      assert.equal(missing.status, 401);
      assert.equal(
        missing.headers.get("www-authenticate"),
        'Bearer scope="mcp:read mcp:write", resource_metadata="http://gw.test/.well-known/oauth-protected-resource/mcp/x"',
      );
      const bad = await call(gw, "/mcp/t/acme", "garbage");
      assert.equal(
        bad.headers.get("www-authenticate"),
        'Bearer error="invalid_token", scope="mcp:read mcp:write", resource_metadata="http://gw.test/.well-known/oauth-protected-resource/mcp/t/acme"',
      );
      const plain = await call(gw, "/api");
      assert.equal(plain.headers.get("www-authenticate"), 'Bearer scope="mcp:read mcp:write"');

      const prm = await gw.gateway.fetch(new Request("http://gw.test/.well-known/oauth-protected-resource/mcp/x"));
      assert.equal(prm.status, 200);
      assert.equal(prm.headers.get("access-control-allow-origin"), "*");
      assert.deepEqual(await prm.json(), {
        resource: "http://gw.test/mcp/x",
        authorization_servers: [ISSUER],
        bearer_methods_supported: ["header"],
        scopes_supported: ["mcp:read", "mcp:write"],
      });
      const prmParam = await gw.gateway.fetch(new Request("http://gw.test/.well-known/oauth-protected-resource/mcp/t/acme"));
      assert.equal(((await prmParam.json()) as { resource: string }).resource, "http://gw.test/mcp/t/acme");
      const preflight = await gw.gateway.fetch(
        new Request("http://gw.test/.well-known/oauth-protected-resource/mcp/x", {
          method: "OPTIONS",
          headers: { origin: "http://app.test", "access-control-request-method": "GET", "access-control-request-headers": "mcp-protocol-version" },
        }),
      );
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
      assert.equal(preflight.headers.get("access-control-allow-headers"), "mcp-protocol-version");
    } finally {
      await gw.close();
    }
  });

  test("allowUnauthenticatedRequests: missing or invalid tokens continue without a user", async () => {
    const gw = await gatewayWith({ allowUnauthenticatedRequests: true });
    try {
      for (const token of [undefined, "garbage"]) {
        const res = await call(gw, "/api", token);
        assert.equal(res.status, 200);
        assert.equal(((await res.json()) as { user: unknown }).user, null);
      }
    } finally {
      await gw.close();
    }
  });

  test("subPropertyName picks the subject claim; a token without it is rejected", async () => {
    const gw = await gatewayWith({ subPropertyName: "email" });
    try {
      const ok = await sign(key1, { iss: ISSUER, aud: AUD, sub: "id-1", email: "e@x" });
      const res = await call(gw, "/api", ok);
      assert.equal(((await res.json()) as { user: { sub: string } }).user.sub, "e@x");
      const missing = await sign(key1, { iss: ISSUER, aud: AUD, sub: "id-1" });
      assert.equal((await call(gw, "/api", missing)).status, 401);
    } finally {
      await gw.close();
    }
  });

  test("an unreachable JWKS answers 503, not 401", async () => {
    const down = await startJwksServer([key1]);
    down.fail(true);
    const gw = await testGateway(
      [{ name: "jwt", exportName: "OpenIdJwtInboundPolicy", options: { issuer: ISSUER, audience: AUD, jwkUrl: down.url } }],
      [{ path: "/api", inbound: ["jwt"] }],
    );
    try {
      const token = await sign(key1, { iss: ISSUER, aud: AUD, sub: "a" });
      const res = await call(gw as never, "/api", token);
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { code: string }).code, "jwks_unavailable");
    } finally {
      await gw.close();
      await down.close();
    }
  });

  test("the verification cache: hit after the first verify, expires with the token, copies per hit", async () => {
    const clock = testClock();
    const services = testServices({ clock });
    try {
      const policy = createOpenIdJwtPolicy(openIdJwtOptionsSchema.parse({ issuer: ISSUER, audience: AUD, jwkUrl: jwks.url }), {
        name: "jwt",
        services,
        routes: [],
        usedBy: [],
        policies: [],
      });
      const token = await sign(key1, { iss: ISSUER, aud: AUD, sub: "a" }, { nowMs: clock.now(), expSecondsFromNow: 60 });
      assert.equal(policy.verifier.cached(token), undefined);
      const r = await policy.verifier.verify(token);
      assert.ok(r.ok);
      const hit1 = policy.verifier.cached(token)!;
      const hit2 = policy.verifier.cached(token)!;
      assert.equal(hit1.sub, "a");
      assert.notEqual(hit1, hit2);
      hit1.data.sub = "tampered";
      assert.equal(policy.verifier.cached(token)!.data.sub, "a");
      // Only the very same token hits: one that ends alike (same signature tail) but differs
      // anywhere else — another payload with a reused signature, say — is not served from cache.
      const [h, p, sig] = token.split(".") as [string, string, string];
      const forged = `${h}.${b64url({ iss: ISSUER, aud: AUD, sub: "admin", exp: 9_999_999_999 })}.${sig}`;
      assert.equal(forged.slice(-32), token.slice(-32));
      assert.equal(policy.verifier.cached(forged), undefined);
      assert.equal(policy.verifier.cached(`${h}.${p}x.${sig}`), undefined);
      assert.equal((await policy.verifier.verify(forged)).ok, false);
      assert.ok(policy.verifier.cached(token), "the real token still hits");
      clock.advance(61_000);
      assert.equal(policy.verifier.cached(token), undefined, "entry ends at exp");
      assert.ok((await policy.verifier.verify(token)).ok, "still inside the clock tolerance");
      clock.advance(30_000);
      const again = await policy.verifier.verify(token);
      assert.deepEqual(again, { ok: false, reason: "invalid", code: "ERR_JWT_EXPIRED" });
    } finally {
      await services.close();
    }
  });

  test("auth0 preset derives issuer and JWKS URL; browserLogin is validated and exposed", async () => {
    const o = auth0ToOpenId(auth0JwtOptionsSchema.parse({ auth0Domain: "tenant.eu.auth0.com", audience: "api" }));
    assert.equal(o.issuer, "https://tenant.eu.auth0.com/");
    assert.equal(o.jwkUrl, "https://tenant.eu.auth0.com/.well-known/jwks.json");
    assert.equal(auth0JwtOptionsSchema.safeParse({ auth0Domain: "https://tenant.eu.auth0.com" }).success, false);

    const browserLogin = {
      url: "https://idp.test/authorize",
      tokenUrl: "https://idp.test/token",
      clientId: "gw",
      clientSecret: "s",
    };
    const parsed = openIdJwtOptionsSchema.parse({ issuer: ISSUER, jwkUrl: jwks.url, browserLogin });
    assert.equal(parsed.browserLogin?.scope, "openid profile email");
    assert.equal(parsed.browserLogin?.pkce, true);
    const services = testServices();
    try {
      const policy = createOpenIdJwtPolicy(parsed, { name: "jwt", services, routes: [], usedBy: [], policies: [] });
      assert.equal(policy.browserLogin?.clientId, "gw");
      const registered = browserLoginConfig(services);
      assert.equal(registered?.issuer, ISSUER);
      assert.equal(registered?.jwksUrl, jwks.url);
      assert.equal(registered?.clientId, "gw");
    } finally {
      await services.close();
    }
    assert.equal(
      openIdJwtOptionsSchema.safeParse({ issuer: ISSUER, jwkUrl: jwks.url, browserLogin: { ...browserLogin, tokenUrl: "ftp://x" } }).success,
      false,
    );
    assert.equal(
      openIdJwtOptionsSchema.safeParse({
        issuer: ISSUER,
        jwkUrl: jwks.url,
        browserLogin: { ...browserLogin, clientSecret: undefined, pkce: false },
      }).success,
      false,
    );
    assert.equal(openIdJwtOptionsSchema.safeParse({ issuer: ISSUER, jwkUrl: "not a url" }).success, false);
    assert.equal(openIdJwtOptionsSchema.safeParse({ issuer: ISSUER, jwkUrl: jwks.url, audiense: "x" }).success, false);
  });

  test("production refuses a plain-http JWKS URL on a remote host", async () => {
    const services = testServices({ settings: { mode: "production" } });
    try {
      const o = openIdJwtOptionsSchema.parse({ issuer: ISSUER, audience: AUD, jwkUrl: "http://idp.example.com/jwks" });
      assert.throws(() => createOpenIdJwtPolicy(o, { name: "jwt", services, routes: [], usedBy: [], policies: [] }), /plain http/);
    } finally {
      await services.close();
    }
  });
});
