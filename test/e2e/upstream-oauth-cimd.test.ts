/**
 * Client ID Metadata Documents: with an https public origin the gateway's client_id at a CIMD
 * authorization server is the URL of the document it serves; on a plain-http origin it falls
 * back to dynamic client registration and says so.
 *
 * Test set-up note: CIMD needs the gateway's public origin to be https, and the authorization
 * server (oidc-provider) must fetch the document from it. The test gives the gateway the public
 * origin `https://gateway.tollgate.test` and, for the duration of this file, maps that origin onto
 * the gateway's real plain-http loopback address inside this process's `fetch` — which both the
 * test browser and the authorization server's document fetch use. oidc-provider's own
 * special-use-address guard (a per-request dispatcher) is dropped for those mapped requests
 * only, since the mapped target is loopback by construction.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { TestBrowser } from "../fixtures/oauth-upstream.js";
import { connectUser, startIdentity, startScenario, whoami, type Identity } from "./upstream-oauth-kit.js";

const PUBLIC = "https://gateway.tollgate.test";
let identity: Identity;
let target = "";
const realFetch = globalThis.fetch;

before(async () => {
  identity = await startIdentity();
  globalThis.fetch = ((input: string | URL | Request, init?: RequestInit & { dispatcher?: unknown }) => {
    const raw = input instanceof Request ? input.url : String(input);
    if (target && raw.startsWith(`${PUBLIC}/`)) {
      const url = new URL(raw);
      const { dispatcher: _guard, ...rest } = init ?? {};
      return realFetch(`${target}${url.pathname}${url.search}`, rest);
    }
    return realFetch(input, init);
  }) as typeof fetch;
});
after(async () => {
  globalThis.fetch = realFetch;
  await identity.close();
});

test("CIMD only: the client_id is the gateway's metadata document URL, fetched by the AS", async () => {
  const s = await startScenario(identity, { registration: { dcr: false, cimd: true } }, {}, { settings: { publicUrl: PUBLIC } });
  target = s.gw.url;
  try {
    const docUrl = `${PUBLIC}/__tollgate/.well-known/oauth-client/notes?authProfileId=notes%3Auser-oauth`;
    const doc = (await (await fetch(docUrl)).json()) as Record<string, unknown>;
    // The URL without authProfileId (client ids of grants connected before) still answers, as itself.
    const legacy = `${PUBLIC}/__tollgate/.well-known/oauth-client/notes`;
    assert.equal(((await (await fetch(legacy)).json()) as Record<string, unknown>).client_id, legacy);
    assert.equal((await fetch(`${legacy}?authProfileId=notes%3Ashared-oauth`)).status, 404);
    assert.deepEqual(doc, {
      client_id: docUrl,
      client_name: "Demo Notes",
      client_uri: PUBLIC,
      redirect_uris: [`${PUBLIC}/__tollgate/auth/connections/notes/callback`],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    });
    const c = await connectUser(s, identity, "alice", new TestBrowser(), s.gw.url);
    try {
      assert.equal(await whoami(c.client), "alice");
    } finally {
      await c.close();
    }
    assert.equal(s.upstream.authorizationRequests.at(-1)?.client_id, docUrl);
    assert.ok(s.upstream.cimdFetches.includes(docUrl), "the AS fetched the document");
    assert.deepEqual(await s.gw.services.store.list("oauth-clients"), [], "nothing registered");
  } finally {
    target = "";
    await s.close();
  }
});

test("on a plain-http public origin CIMD is skipped for DCR, and the log says why", async () => {
  const s = await startScenario(identity, { registration: { dcr: true, cimd: true } });
  try {
    const c = await connectUser(s, identity, "bob");
    assert.equal(await whoami(c.client), "bob");
    await c.close();
    const clientId = s.upstream.authorizationRequests.at(-1)?.client_id ?? "";
    assert.ok(!clientId.startsWith("http"), `a registered client id, got ${clientId}`);
    assert.ok(s.gw.logs.some((l) => l.includes("not https; using dynamic client registration")));
  } finally {
    await s.close();
  }
});
