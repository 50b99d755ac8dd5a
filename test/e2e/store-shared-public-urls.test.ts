/**
 * Two gateway instances with different public URLs (here: two loopback ports) on one store — a
 * SQLite file and a PostgreSQL schema — in front of one real OAuth upstream (oidc-provider with
 * Dynamic Client Registration). Each public URL needs its own registration (the redirect URI
 * differs); a grant made through either instance must keep working through both, without the
 * instances re-registering over each other and dropping every user's grant.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { CLIENTS_NS } from "../../src/oauth/registration.js";
import { upstreamOAuthState } from "../../src/oauth/registry.js";
import { generateKey } from "../../src/store/crypto.js";
import { PostgresStore } from "../../src/store/postgres.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store } from "../../src/store/types.js";
import { TestBrowser, startOAuthUpstream } from "../fixtures/oauth-upstream.js";
import { startGateway, writeProject } from "../helpers/harness.js";
import { dropSchema, findTestPostgres, uniqueSchema } from "./store-postgres-env.js";
import { connectUser, projectFiles, sdkClient, startIdentity, whoami, type Identity } from "./upstream-oauth-kit.js";

let identity: Identity;
before(async () => {
  identity = await startIdentity();
});
after(async () => {
  await identity.close();
});

async function twoInstancesOneStore(open: () => Promise<Store>): Promise<void> {
  const upstream = await startOAuthUpstream({});
  const stores = [await open(), await open()];
  const env = { TOLLGATE_ENCRYPTION_KEY: generateKey() };
  const dir = await writeProject(projectFiles(identity.jwks.url, upstream.mcpUrl));
  const a = await startGateway({ projectDir: dir, env, settings: { devLogin: true }, store: stores[0] });
  const b = await startGateway({ projectDir: dir, env, settings: { devLogin: true }, store: stores[1] });
  try {
    assert.notEqual(a.services.settings.publicUrl, b.services.settings.publicUrl);
    const alice = await connectUser({ upstream, gw: a, close: async () => {} }, identity, "alice", new TestBrowser(), a.url);
    await alice.close();
    const bob = await connectUser({ upstream, gw: b, close: async () => {} }, identity, "bob", new TestBrowser(), b.url);
    await bob.close();
    assert.equal(upstream.clientIds().length, 2, "one registration per public URL");
    const rows = await stores[0]!.list<{ redirectUri: string }>(CLIENTS_NS);
    assert.deepEqual(rows.map((r) => new URL(r.value.redirectUri).origin).sort(), [a.url, b.url].sort());

    // Every access token dies at the upstream, in turns, so each call below refreshes through
    // the instance it is made on — with the client the grant was issued to.
    for (let round = 0; round < 2; round++) {
      for (const [user, gw] of [
        ["alice", b],
        ["bob", a],
        ["alice", a],
        ["bob", b],
      ] as const) {
        upstream.expireAccessTokens(user);
        upstreamOAuthState(gw.services).grants.forget(`notes:user:${user}`);
        const c = sdkClient(gw.url, await identity.token(user));
        try {
          await c.connect();
          assert.equal(await whoami(c.client), user, `${user} through ${gw === a ? "A" : "B"}, round ${round}`);
        } finally {
          await c.close();
        }
      }
    }
    assert.equal(upstream.clientIds().length, 2, "no instance registered again");
    assert.ok((upstream.tokenRequests.refresh_token ?? 0) >= 8, "the grants were refreshed");
    for (const user of ["alice", "bob"]) {
      assert.ok(await upstreamOAuthState(a.services).grants.read(`notes:user:${user}`), `${user}'s grant is kept`);
    }
    for (const line of [...a.logs, ...b.logs]) {
      assert.ok(!line.includes("client_changed") && !line.includes('"event":"mcp_auth_upstream_reconsent_required"'), line);
    }
  } finally {
    await a.close();
    await b.close();
    for (const s of stores) await s.close();
    await upstream.close();
  }
}

describe("two public URLs on one store", () => {
  test("SQLite file", async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-two-urls-"));
    try {
      await twoInstancesOneStore(async () => SqliteStore.open(path.join(root, "data.db")));
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  test("PostgreSQL", async (t) => {
    const pgEnv = await findTestPostgres();
    if (!pgEnv.url) {
      if (pgEnv.required) assert.fail(pgEnv.reason);
      return t.skip(pgEnv.reason);
    }
    const url = pgEnv.url;
    const schema = uniqueSchema("urls");
    try {
      await twoInstancesOneStore(() => PostgresStore.connect(url, { schema, max: 4 }));
    } finally {
      await dropSchema(url, schema);
    }
  });
});
