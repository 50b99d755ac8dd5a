/**
 * `kill -9` of a process in the middle of an upstream token refresh, on SQLite and PostgreSQL,
 * with real child processes. The restarted side (this process) must not wait out the dead
 * holder's lock lease, and must never present a refresh token the dead process may already
 * have had rotated.
 *
 * The upstream token endpoint is a loopback stand-in: it has to hold one refresh request open
 * on demand and count every refresh token presented to it, which the real authorization server
 * fixture cannot do.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { silentLogger } from "../../src/log.js";
import type { TokenSet } from "../../src/oauth/flow.js";
import { GrantManager, grantKey, type GrantMeta } from "../../src/oauth/grants.js";
import { createSecretBox, generateKey, parseKeyRing } from "../../src/store/crypto.js";
import { createStore } from "../../src/store/index.js";
import type { Store } from "../../src/store/types.js";
import { crash, lockInChild, refreshInChild } from "./store-lock-process.js";
import { dropSchema, findTestPostgres, uniqueSchema } from "./store-postgres-env.js";

const KEY = grantKey("notes", "alice");
const encryptionKey = generateKey();
const secrets = createSecretBox(parseKeyRing(encryptionKey));

/** Refresh tokens presented to the token endpoint, by anyone. */
const presented: string[] = [];
let arrived: (() => void) | undefined;
let tokenUrl: string;
const held = new Set<http.ServerResponse>();
const tokenEndpoint = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c: Buffer) => (body += c.toString()));
  req.on("end", () => {
    presented.push(body);
    held.add(res); // never answered: the refresh is in flight when the holder is killed
    arrived?.();
  });
});
before(async () => {
  tokenEndpoint.listen(0, "127.0.0.1");
  await once(tokenEndpoint, "listening");
  tokenUrl = `http://127.0.0.1:${(tokenEndpoint.address() as AddressInfo).port}/token`;
});
after(async () => {
  tokenEndpoint.closeAllConnections();
  tokenEndpoint.close();
});

function grantMeta(now: number): GrantMeta {
  return {
    upstreamId: "notes",
    mode: "user",
    subject: "alice",
    issuer: "https://as.example",
    clientId: "c1",
    resource: "https://up.example/mcp",
    scopes: ["read"],
    grantedScope: undefined,
    expiresAt: undefined,
    obtainedAt: now,
    hasRefreshToken: true,
    createdAt: now,
    refreshedAt: undefined,
    stepUps: 0,
  };
}

/** An expired grant holding refresh token `rt-1`; returns this process's manager for it. */
async function expiredGrant(store: Store): Promise<GrantManager> {
  const gm = new GrantManager({ store, secrets, log: silentLogger, now: Date.now });
  const expired: TokenSet = { accessToken: "at-1-xxxxxxxxxxxxxxxx", refreshToken: "rt-1", tokenType: "bearer", expiresAt: Date.now() - 1, scope: "read" };
  await gm.write(KEY, grantMeta(Date.now()), expired);
  presented.length = 0;
  return gm;
}

/** This process's refresher: presents the token (recorded) and gets a new pair. */
const answer = async (g: { secret: { refreshToken?: string | undefined } }): Promise<TokenSet> => {
  presented.push(g.secret.refreshToken!);
  return { accessToken: "at-2-yyyyyyyyyyyyyyyy", refreshToken: "rt-2", tokenType: "bearer", expiresAt: Date.now() + 3_600_000, scope: "read" };
};

function crashScenarios(name: string, open: () => Promise<{ spec: string; cleanup(): Promise<void> }>): void {
  describe(`kill -9 during a refresh: ${name}`, () => {
    test("holder killed while holding the refresh lock: the next request takes the lock over and refreshes", async () => {
      const { spec, cleanup } = await open();
      const store = await createStore(spec, {});
      try {
        const gm = await expiredGrant(store);
        // The dead holder's lease (60 s) outlasts the refresh's 20 s wait: only seeing that its
        // process is gone lets the next request through.
        const child = await lockInChild(spec, `grant-refresh:${KEY}`, 60_000);
        await crash(child);
        const r = await gm.token(KEY, answer);
        assert.deepEqual(r, { kind: "ok", token: "at-2-yyyyyyyyyyyyyyyy" });
        assert.deepEqual(presented, ["rt-1"]);
      } finally {
        await store.close();
        await cleanup();
      }
    });

    test("holder killed after sending the refresh token: the next request asks to connect again, rt-1 is never presented twice", async () => {
      const { spec, cleanup } = await open();
      const store = await createStore(spec, {});
      try {
        const gm = await expiredGrant(store);
        const sent = new Promise<void>((resolve) => (arrived = resolve));
        const child = refreshInChild(spec, encryptionKey, KEY, tokenUrl);
        try {
          await sent;
        } finally {
          arrived = undefined;
          await crash(child);
        }
        assert.deepEqual(presented, ["rt-1"], "the killed process presented rt-1");
        assert.deepEqual(await gm.token(KEY, answer), { kind: "reconsent" });
        assert.deepEqual(presented, ["rt-1"], "rt-1 was not presented again");
        assert.equal(await gm.read(KEY), undefined, "the grant of unknown state is dropped");
        assert.equal(await gm.wasDropped(KEY), true, "the user is asked to connect again");
      } finally {
        for (const res of held) res.destroy();
        held.clear();
        await store.close();
        await cleanup();
      }
    });
  });
}

crashScenarios("SQLite", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-refresh-crash-"));
  return { spec: `sqlite:${path.join(dir, "data.db")}`, cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
});

const pgEnv = await findTestPostgres();
if (pgEnv.url) {
  const url = pgEnv.url;
  crashScenarios("PostgreSQL", async () => {
    const schema = uniqueSchema("crash");
    return { spec: `${url}${url.includes("?") ? "&" : "?"}schema=${schema}`, cleanup: () => dropSchema(url, schema) };
  });
} else if (pgEnv.required) {
  test("PostgreSQL is required when CI=true", () => assert.fail(pgEnv.reason));
} else {
  test("kill -9 during a refresh: PostgreSQL", { skip: pgEnv.reason }, () => undefined);
}
