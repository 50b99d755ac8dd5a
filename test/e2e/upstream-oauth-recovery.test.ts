/**
 * Upstream grants that cannot be recovered by a refresh, against the demo upstream (a real
 * oidc-provider): an upstream that refuses even the freshly refreshed token, and an upstream
 * authorization server that forgot the gateway's registered client (it restarted). Both must
 * ask the user to connect again (`reconsent_required`) in the same request, and never hand the
 * client the upstream's own challenge.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { CLIENTS_NS, registrationKey } from "../../src/oauth/registration.js";
import { upstreamOAuthState } from "../../src/oauth/registry.js";
import { TestBrowser, startOAuthUpstream, type OAuthUpstream } from "../fixtures/oauth-upstream.js";
import { connectInBrowser, connectUser, sdkClient, startIdentity, startScenario, whoami, type Identity } from "./upstream-oauth-kit.js";

let identity: Identity;
before(async () => {
  identity = await startIdentity();
});
after(async () => {
  await identity.close();
});

/**
 * A -32042 connect-required error as the SDK client reports it (it keeps only `elicitations`):
 * whether it says `reconsent_required` (the "connect again" wording) and its connect URL.
 */
function connectData(err: unknown): { state: string; authUrl: string } {
  assert.ok(err instanceof McpError, `expected a connect-required McpError, got ${String(err)}`);
  assert.equal(err.code, -32042, `expected -32042, got ${err.code}: ${err.message}`);
  const e = (err.data as { elicitations?: Array<{ url: string; message: string }> }).elicitations?.[0];
  assert.ok(e?.url, "connect-required carries a URL");
  const state = /expired or was revoked/.test(e.message) ? "reconsent_required" : "authenticating";
  return { state, authUrl: e.url };
}

async function failure(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return assert.fail("expected the call to fail");
}

test("an upstream that refuses even the freshly refreshed token: reconsent_required in the same request, grant dropped", async () => {
  const s = await startScenario(identity, {});
  // From the moment it is switched on, every token the upstream issues is dead on arrival
  // (refreshes still succeed): the gateway's credentials are refused whatever it does.
  const killTokens = () => void s.upstream.expireAccessTokens();
  try {
    const c = await connectUser(s, identity, "alice");
    try {
      assert.equal(await whoami(c.client), "alice");
      s.upstream.provider.on("grant.success", killTokens);
      assert.ok(s.upstream.expireAccessTokens("alice") > 0);
      const refreshes = s.upstream.tokenRequests.refresh_token ?? 0;
      const seen = s.upstream.seenAuthorizations.length;
      const data = connectData(await failure(() => c.client.callTool({ name: "whoami", arguments: {} })));
      assert.equal(data.state, "reconsent_required");
      assert.match(data.authUrl, /\/auth\/connections\/notes\/connect\?redirect=true&operationId=[^&]+&browserTicket=/);
      assert.equal(s.upstream.tokenRequests.refresh_token, refreshes + 1, "exactly one refresh");
      const tried = s.upstream.seenAuthorizations.slice(seen);
      assert.equal(tried.length, 2, "the request and its one retry");
      assert.notEqual(tried[0], tried[1], "the retry carried the refreshed token");
      assert.equal(await upstreamOAuthState(s.gw.services).grants.read("notes:user:alice"), undefined, "the useless grant is dropped");
      assert.ok(s.gw.logs.some((l) => l.includes('"event":"mcp_auth_upstream_reconsent_required"')));
    } finally {
      await c.close();
    }
    s.upstream.provider.off("grant.success", killTokens);
    const again = await connectUser(s, identity, "alice");
    assert.equal(await whoami(again.client), "alice");
    await again.close();
  } finally {
    await s.close();
  }
});

test("an upstream that forgot the gateway's registered client: reconsent_required on the first request, then a new registration", async () => {
  const s = await startScenario(identity, {});
  let upstream: OAuthUpstream | undefined = s.upstream;
  try {
    const c = await connectUser(s, identity, "bob");
    assert.equal(await whoami(c.client), "bob");
    await c.close();
    const [oldClient] = upstream.clientIds();
    assert.ok(oldClient);
    const issuer = upstream.issuer;
    const registration = registrationKey("notes", issuer, `${s.gw.url}/__tollgate/auth/connections/notes/callback`);
    assert.ok(await s.gw.services.store.get(CLIENTS_NS, registration), "the DCR registration is stored");

    // The upstream restarts on the same port and remembers nothing: clients, grants, tokens.
    const port = Number(new URL(upstream.origin).port);
    await upstream.close();
    upstream = undefined;
    upstream = await startOAuthUpstream({ port });
    assert.equal(upstream.issuer, issuer);
    assert.deepEqual(upstream.clientIds(), []);

    const fresh = sdkClient(s.gw.url, await identity.token("bob"));
    let data: { state: string; authUrl: string };
    try {
      // initialize carries the stored token: 401 → refresh → invalid_client → connect again.
      data = connectData(await failure(() => fresh.connect()));
    } finally {
      await fresh.close();
    }
    assert.equal(data.state, "reconsent_required");
    assert.deepEqual(
      upstream.tokenRequestLog.map((r) => [r.grantType, r.error]),
      [["refresh_token", "invalid_client"]],
    );
    assert.equal(await upstreamOAuthState(s.gw.services).grants.read("notes:user:bob"), undefined, "the grant is dropped");
    assert.equal(await s.gw.services.store.get(CLIENTS_NS, registration), undefined, "the stale registration is dropped");

    // Connecting again registers a new client at the upstream and works.
    const page = await connectInBrowser(new TestBrowser(), data.authUrl, "bob");
    assert.equal(page.status, 200, page.text.slice(0, 500));
    assert.match(page.text, /is connected/);
    const [newClient] = upstream.clientIds();
    assert.ok(newClient && newClient !== oldClient, "registered anew");
    const again = sdkClient(s.gw.url, await identity.token("bob"));
    await again.connect();
    assert.equal(await whoami(again.client), "bob");
    await again.close();
  } finally {
    await s.gw.close();
    await upstream?.close();
  }
});
