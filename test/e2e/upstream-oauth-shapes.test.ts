/**
 * The discovery and registration shapes real providers have, each against a real authorization
 * server (oidc-provider) and the official-SDK MCP server of the demo upstream:
 * PRM only at the origin root, PRM named only by the 401 challenge, an issuer with a path,
 * a required scope only the configuration knows, DCR, manual clients (basic and post), and a
 * server that challenges only at `tools/call`. CIMD has its own file (it needs an https origin).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { connectUser, startIdentity, startScenario, whoami, type Identity, type Scenario } from "./upstream-oauth-kit.js";

let identity: Identity;
before(async () => {
  identity = await startIdentity();
});
after(async () => {
  await identity.close();
});

async function run(s: Scenario, user: string, check?: (s: Scenario) => void | Promise<void>) {
  try {
    const c = await connectUser(s, identity, user);
    try {
      assert.equal(await whoami(c.client), user);
      await check?.(s);
    } finally {
      await c.close();
    }
  } finally {
    await s.close();
  }
}

test("PRM only at the origin root", async () => {
  const s = await startScenario(identity, { prm: "root" });
  await run(s, "alice", () => {
    assert.ok(!s.gw.logs.some((l) => l.includes('"level":50')), "no errors logged");
  });
});

test("PRM named only by the upstream's 401 challenge", async () => {
  const s = await startScenario(identity, { prm: "none" });
  await run(s, "alice", () => {
    const done = s.gw.logs.find((l) => l.includes("upstream OAuth discovery complete"));
    assert.match(done ?? "", /\/meta\/protected-resource/);
  });
});

test("issuer with a path, metadata only at the path-appended OpenID location", async () => {
  const s = await startScenario(identity, {
    issuerPath: "/tenant1",
    asMetadata: { oauth: false, oidcInserted: false, oidcAppended: true },
  });
  await run(s, "alice", () => {
    assert.ok(s.upstream.issuer.endsWith("/tenant1"));
  });
});

test("issuer with a path, RFC 8414 path-inserted metadata", async () => {
  const s = await startScenario(identity, { issuerPath: "/t1", asMetadata: { oauth: true, oidcAppended: false } });
  await run(s, "bob");
});

test("a required scope that only the configuration knows", async () => {
  const s = await startScenario(
    identity,
    { requiredScopes: ["mcp"], prmScopes: false, challengeScopes: false, resourceScopes: ["mcp"] },
    { scopes: ["mcp"] },
  );
  await run(s, "alice", () => {
    assert.equal(s.upstream.authorizationRequests.at(-1)?.scope, "mcp");
  });
});

test("scopes come from PRM scopes_supported when nothing else says; prompt is passed on", async () => {
  const s = await startScenario(identity, { prmScopes: ["notes:read", "notes:write"] }, { prompt: "consent" });
  await run(s, "alice", () => {
    assert.equal(s.upstream.authorizationRequests.at(-1)?.scope, "notes:read notes:write");
    assert.equal(s.upstream.authorizationRequests.at(-1)?.prompt, "consent");
  });
});

test("DCR only: registered once, persisted per issuer", async () => {
  const s = await startScenario(identity, { registration: { dcr: true, cimd: false } });
  try {
    const a = await connectUser(s, identity, "alice");
    const b = await connectUser(s, identity, "bob");
    await a.close();
    await b.close();
    assert.equal(s.upstream.clientIds().length, 1, "one registration for both users");
    const rows = await s.gw.services.store.list("oauth-clients");
    assert.equal(rows.length, 1);
    assert.ok(rows[0]!.key.includes(`|${s.upstream.issuer}|`));
  } finally {
    await s.close();
  }
});

for (const method of ["client_secret_basic", "client_secret_post"] as const) {
  test(`manual client with ${method}`, async () => {
    const secret = `secret-${method}-0123456789abcdef`;
    const s = await startScenario(
      identity,
      { registration: { dcr: false, cimd: false } },
      { clientRegistration: { mode: "manual", clientId: "tollgate-manual", clientSecret: "$env(NOTES_CLIENT_SECRET)", tokenEndpointAuthMethod: method } },
      { env: { NOTES_CLIENT_SECRET: secret } },
    );
    s.upstream.addClient({
      clientId: "tollgate-manual",
      clientSecret: secret,
      tokenEndpointAuthMethod: method,
      redirectUris: [`${s.gw.url}/__tollgate/auth/connections/notes/callback`],
    });
    await run(s, "alice", () => {
      const rec = s.upstream.tokenRequestLog.find((r) => r.grantType === "authorization_code");
      assert.ok(rec, "a code exchange happened");
      assert.equal(rec.clientAuth, method === "client_secret_basic" ? "basic" : "post");
      assert.ok(!s.gw.logs.join("\n").includes(secret), "client secret never logged");
    });
  });
}

test("no DCR, no CIMD, auto mode: a clear error telling the admin to use manual mode", async () => {
  const s = await startScenario(identity, { registration: { dcr: false, cimd: false } });
  try {
    const { expectConnectRequired, sdkClient } = await import("./upstream-oauth-kit.js");
    const { TestBrowser } = await import("../fixtures/oauth-upstream.js");
    const c = sdkClient(s.gw.url, await identity.token("alice"));
    const url = await expectConnectRequired(() => c.firstUse());
    await c.close();
    const page = await new TestBrowser().walk(url, { values: () => ({ username: "alice" }) });
    assert.equal(page.status, 502);
    assert.match(page.text, /manual/);
  } finally {
    await s.close();
  }
});

test("an upstream that challenges only at tools/call: the session starts anonymously, the 401 is recovered", async () => {
  const s = await startScenario(identity, { challengeOnlyAt: "tools/call" });
  try {
    const { expectConnectRequired, sdkClient } = await import("./upstream-oauth-kit.js");
    const anon = sdkClient(s.gw.url, await identity.token("alice"));
    await anon.connect(); // initialize reaches the upstream without a credential and succeeds
    await expectConnectRequired(() => anon.client.callTool({ name: "whoami", arguments: {} }));
    await anon.close();
    const c = await connectUser(s, identity, "alice");
    try {
      assert.equal(await whoami(c.client), "alice");
      const before = s.upstream.tokenRequests.refresh_token ?? 0;
      assert.ok(s.upstream.expireAccessTokens("alice") > 0);
      assert.equal(await whoami(c.client), "alice"); // 401 → one refresh → retried once
      assert.equal(s.upstream.tokenRequests.refresh_token ?? 0, before + 1);
      assert.equal(await whoami(c.client), "alice");
      assert.equal(s.upstream.tokenRequests.refresh_token ?? 0, before + 1, "the refreshed token is reused");
    } finally {
      await c.close();
    }
  } finally {
    await s.close();
  }
});

test("403 insufficient_scope steps up: connect again with the union of scopes, then it works", async () => {
  const s = await startScenario(identity, { prmScopes: ["notes:read"], requiredScopes: ["notes:write"], challengeScopes: false, challengeOnlyAt: "tools/call" });
  try {
    const { TestBrowser } = await import("../fixtures/oauth-upstream.js");
    const { connectInBrowser, expectConnectRequired } = await import("./upstream-oauth-kit.js");
    const c = await connectUser(s, identity, "alice");
    try {
      assert.equal(s.upstream.authorizationRequests.at(-1)?.scope, "notes:read");
      const url = await expectConnectRequired(() => c.client.callTool({ name: "whoami", arguments: {} }));
      const page = await connectInBrowser(new TestBrowser(), url, "alice");
      assert.match(page.text, /is connected/);
      assert.equal(s.upstream.authorizationRequests.at(-1)?.scope, "notes:read notes:write");
      assert.equal(await whoami(c.client), "alice");
      const { upstreamOAuthState } = await import("../../src/oauth/registry.js");
      assert.equal((await upstreamOAuthState(s.gw.services).grants.read("notes:user:alice"))?.meta.stepUps, 1);
    } finally {
      await c.close();
    }
  } finally {
    await s.close();
  }
});
