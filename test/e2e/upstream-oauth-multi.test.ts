/**
 * Two gateway instances on one store behave as one gateway: a user connected through one can use
 * the other, and concurrent calls through both when the upstream token expires cause exactly one
 * refresh (store lock, re-read, compare-and-swap) — the rotating refresh token is never spent
 * twice. Runs on SQLite (two connections to one file) and on PostgreSQL when it is reachable
 * (required when CI=true).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { generateKey } from "../../src/store/crypto.js";
import { createStore } from "../../src/store/index.js";
import type { Store } from "../../src/store/types.js";
import { startGateway, writeProject } from "../helpers/harness.js";
import { startOAuthUpstream } from "../fixtures/oauth-upstream.js";
import { dropSchema, findTestPostgres, uniqueSchema } from "./store-postgres-env.js";
import { connectUser, projectFiles, sdkClient, startIdentity, whoami, type Identity } from "./upstream-oauth-kit.js";

let identity: Identity;
before(async () => {
  identity = await startIdentity();
});
after(async () => {
  await identity.close();
});

async function twoInstances(openStore: () => Promise<Store>) {
  const upstream = await startOAuthUpstream({});
  const env = { TOLLGATE_ENCRYPTION_KEY: generateKey() };
  const dir = await writeProject(projectFiles(identity.jwks.url, upstream.mcpUrl));
  const storeA = await openStore();
  const storeB = await openStore();
  const a = await startGateway({ projectDir: dir, env, store: storeA, settings: { devLogin: true } });
  // Behind one load balancer every instance has the same public URL (and so the same callback).
  const b = await startGateway({ projectDir: dir, env, store: storeB, settings: { devLogin: true, publicUrl: a.url } });
  try {
    const viaA = await connectUser({ upstream, gw: a, close: async () => {} }, identity, "alice");
    const viaB = sdkClient(b.url, await identity.token("alice"));
    await viaB.connect();
    try {
      assert.equal(await whoami(viaB.client), "alice", "instance B uses the grant made through A");
      for (let round = 1; round <= 2; round++) {
        assert.ok(upstream.expireAccessTokens("alice") > 0);
        const calls = Array.from({ length: 20 }, (_, i) => whoami((i % 2 ? viaA : viaB).client));
        assert.deepEqual(new Set(await Promise.all(calls)), new Set(["alice"]));
        assert.equal(upstream.tokenRequests.refresh_token, round, "one refresh across both instances");
      }
      assert.ok(upstream.tokenRequestLog.every((r) => r.status === 200), "no spent refresh token was replayed");
    } finally {
      await viaA.close();
      await viaB.close();
    }
  } finally {
    await a.close();
    await b.close();
    await storeA.close();
    await storeB.close();
    await upstream.close();
  }
}

test("two instances on one SQLite file refresh once", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-multi-"));
  try {
    await twoInstances(() => createStore(`sqlite:${path.join(dir, "data.db")}`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const pgAvailability = await findTestPostgres();
test(
  "two instances on one PostgreSQL refresh once",
  { skip: !pgAvailability.url && !pgAvailability.required ? pgAvailability.reason : false },
  async () => {
    assert.ok(pgAvailability.url, pgAvailability.reason);
    const schema = uniqueSchema("oauth");
    try {
      await twoInstances(() => createStore(`${pgAvailability.url}?schema=${schema}`));
    } finally {
      await dropSchema(pgAvailability.url!, schema);
    }
  },
);
