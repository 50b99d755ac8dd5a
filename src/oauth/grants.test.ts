import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { silentLogger } from "../log.js";
import { createSecretBox } from "../store/crypto.js";
import { MemoryStore } from "../store/memory.js";
import type { Store } from "../store/types.js";
import { TokenEndpointError, type TokenSet } from "./flow.js";
import { GrantManager, GRANTS_NS, grantKey, type Grant, type GrantMeta } from "./grants.js";

function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/** Counts store calls (the warm path must make none). */
function counting(store: Store): Store & { calls: string[] } {
  const calls: string[] = [];
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "calls") return calls;
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") return v;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as Store & { calls: string[] };
}

const box = createSecretBox([{ id: "k1", key: randomBytes(32) }]);

function meta(now: number, over: Partial<GrantMeta> = {}): GrantMeta {
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
    ...over,
  };
}

function tokens(n: number, expiresAt: number | undefined, refresh: string | null = `rt-${n}`): TokenSet {
  return { accessToken: `at-${n}-${"x".repeat(20)}`, refreshToken: refresh ?? undefined, tokenType: "bearer", expiresAt, scope: "read" };
}

function setup(store?: Store) {
  const c = clock();
  const s = counting(store ?? new MemoryStore({ now: c.now }));
  const gm = new GrantManager({ store: s, secrets: box, log: silentLogger, now: c.now });
  return { c, s, gm };
}

const key = grantKey("notes", "alice");

test("grant keys", () => {
  assert.equal(grantKey("linear", "u1"), "linear:user:u1");
  assert.equal(grantKey("linear", undefined), "linear:shared");
});

test("grant keys never collide across upstream ids, subjects and modes", () => {
  // An upstream id derived from a policy name may contain ':'; a subject may too.
  assert.notEqual(grantKey("a:user:alice", undefined), grantKey("a", "alice:shared"));
  assert.notEqual(grantKey("a:user:b", "c"), grantKey("a", "b:user:c"));
  assert.ok(!grantKey("a:b", "x").startsWith("a:"), "no upstream's keys fall under another upstream's prefix");
});

test("tokens are encrypted at rest and bound to their record", async () => {
  const { c, s, gm } = setup();
  await gm.write(key, meta(c.now()), tokens(1, c.now() + 3_600_000));
  const raw = JSON.stringify((await s.get(GRANTS_NS, key))!.value);
  assert.ok(!raw.includes("at-1-"), "access token not stored in clear");
  assert.ok(!raw.includes("rt-1"), "refresh token not stored in clear");
  // An envelope moved to another user's record does not open.
  await s.put(GRANTS_NS, grantKey("notes", "mallory"), (await s.get(GRANTS_NS, key))!.value);
  await assert.rejects(gm.read(grantKey("notes", "mallory")), { code: "decrypt_failed" });
  assert.equal((await gm.read(key))!.secret.refreshToken, "rt-1");
});

test("warm path: a fresh cached token needs no store round trip", async () => {
  const { c, s, gm } = setup();
  await gm.write(key, meta(c.now()), tokens(1, c.now() + 3_600_000));
  s.calls.length = 0;
  const refresher = async () => assert.fail("no refresh expected");
  for (let i = 0; i < 5; i++) assert.deepEqual(await gm.token(key, refresher), { kind: "ok", token: tokens(1, 0).accessToken });
  assert.deepEqual(s.calls, []);
  // Another manager (another process) reads the store once, then caches too.
  const other = new GrantManager({ store: s, secrets: box, log: silentLogger, now: c.now });
  await other.token(key, refresher);
  await other.token(key, refresher);
  assert.deepEqual(s.calls, ["get"]);
});

test("refreshes proactively within the skew, saving the rotated refresh token", async () => {
  const { c, gm } = setup();
  await gm.write(key, meta(c.now()), tokens(1, c.now() + 120_000));
  let seen: Grant | undefined;
  const refresher = async (g: Grant) => {
    seen = g;
    return tokens(2, c.now() + 3_600_000);
  };
  assert.equal((await gm.token(key, refresher)).kind, "ok");
  assert.equal(seen, undefined, "not yet within 60 s of expiry");
  c.advance(61_000);
  assert.deepEqual(await gm.token(key, refresher), { kind: "ok", token: tokens(2, 0).accessToken });
  assert.equal(seen!.secret.refreshToken, "rt-1");
  const stored = (await gm.read(key))!;
  assert.equal(stored.secret.refreshToken, "rt-2");
  assert.ok(stored.meta.refreshedAt !== undefined);
});

test("concurrent requests at expiry share one refresh (in one process)", async () => {
  const { c, gm } = setup();
  await gm.write(key, meta(c.now()), tokens(1, c.now() - 1));
  let calls = 0;
  const refresher = async () => {
    calls++;
    await new Promise((r) => setImmediate(r));
    return tokens(2, c.now() + 3_600_000);
  };
  const out = await Promise.all(Array.from({ length: 20 }, () => gm.token(key, refresher)));
  assert.equal(calls, 1);
  assert.ok(out.every((r) => r.kind === "ok" && r.token === tokens(2, 0).accessToken));
});

test("two processes sharing a store refresh once (lock, re-read, compare-and-swap)", async () => {
  const c = clock();
  const store = new MemoryStore({ now: c.now });
  const a = new GrantManager({ store, secrets: box, log: silentLogger, now: c.now });
  const b = new GrantManager({ store, secrets: box, log: silentLogger, now: c.now });
  await a.write(key, meta(c.now()), tokens(1, c.now() - 1));
  const used: string[] = [];
  const refresher = async (g: Grant) => {
    used.push(g.secret.refreshToken!);
    await new Promise((r) => setImmediate(r));
    return tokens(used.length + 1, c.now() + 3_600_000);
  };
  const out = await Promise.all([...Array.from({ length: 10 }, () => a.token(key, refresher)), ...Array.from({ length: 10 }, () => b.token(key, refresher))]);
  assert.deepEqual(used, ["rt-1"], "the spent refresh token is never used twice");
  assert.equal(new Set(out.map((r) => (r.kind === "ok" ? r.token : r.kind))).size, 1);
});

test("after an upstream 401 the token is refreshed once; a token already replaced is reused", async () => {
  const { c, gm } = setup();
  await gm.write(key, meta(c.now()), tokens(1, c.now() + 3_600_000));
  let calls = 0;
  const refresher = async () => tokens(++calls + 1, c.now() + 3_600_000);
  const rejected = tokens(1, 0).accessToken;
  const [x, y] = await Promise.all([gm.refreshAfterRejection(key, rejected, refresher), gm.refreshAfterRejection(key, rejected, refresher)]);
  assert.equal(calls, 1);
  assert.deepEqual(x, y);
  // A late request that still used the old token gets the replacement without another refresh.
  assert.deepEqual(await gm.refreshAfterRejection(key, rejected, refresher), x);
  assert.equal(calls, 1);
});

test("invalid_grant deletes the grant and marks it for reconsent", async () => {
  const { c, gm } = setup();
  await gm.write(key, meta(c.now()), tokens(1, c.now() - 1));
  const refresher = async () => {
    throw new TokenEndpointError("invalid_grant", "invalid_grant", new Error("revoked"));
  };
  assert.deepEqual(await gm.token(key, refresher), { kind: "reconsent" });
  assert.equal(await gm.read(key), undefined);
  assert.equal(await gm.wasDropped(key), true);
  assert.deepEqual(await gm.token(key, refresher), { kind: "missing" });
  await gm.clearDropped(key);
  assert.equal(await gm.wasDropped(key), false);
});

test("a refreshed token the upstream refuses too drops the grant, unless it was replaced meanwhile", async () => {
  const { c, gm } = setup();
  await gm.write(key, meta(c.now()), tokens(2, c.now() + 3_600_000));
  // Someone else's refresh or a new connection replaced the refused token: the grant stays.
  assert.equal(await gm.dropRejected(key, tokens(1, 0).accessToken, "refused"), false);
  assert.ok(await gm.read(key));
  assert.equal(await gm.dropRejected(key, tokens(2, 0).accessToken, "refused"), true);
  assert.equal(await gm.read(key), undefined);
  assert.equal(gm.cachedToken(key), undefined);
  assert.equal(await gm.wasDropped(key), true, "the next request asks to connect again, not to connect");
  assert.equal(await gm.dropRejected(key, tokens(2, 0).accessToken, "refused"), true, "nothing left to use");
});

test("token endpoint outages keep the grant and surface as 502", async () => {
  const { c, gm } = setup();
  await gm.write(key, meta(c.now()), tokens(1, c.now() - 1));
  const refresher = async () => {
    throw new TokenEndpointError("temporary", undefined, new Error("503"));
  };
  await assert.rejects(gm.token(key, refresher), { status: 502, code: "upstream_token_endpoint_unavailable" });
  assert.ok(await gm.read(key));
});

test("without a refresh token: used until expiry, then reconsent", async () => {
  const { c, gm } = setup();
  await gm.write(key, meta(c.now()), tokens(1, c.now() + 30_000, null));
  const refresher = async () => assert.fail("cannot refresh");
  assert.equal((await gm.token(key, refresher)).kind, "ok");
  c.advance(31_000);
  assert.deepEqual(await gm.token(key, refresher), { kind: "reconsent" });
});

test("short-lived tokens are refreshed near expiry, not on every request", async () => {
  const { c, gm } = setup();
  await gm.write(key, meta(c.now()), tokens(1, c.now() + 4_000));
  let calls = 0;
  const refresher = async () => tokens(++calls + 1, c.now() + 4_000);
  await gm.token(key, refresher);
  c.advance(1_000);
  await gm.token(key, refresher);
  assert.equal(calls, 0, "a 4 s token is fresh for its first 2 s");
  c.advance(1_500);
  await gm.token(key, refresher);
  assert.equal(calls, 1);
});

test("a grant removed by another instance stops being used within the cache age, whatever the token's lifetime", async () => {
  const c = clock();
  const store = new MemoryStore({ now: c.now });
  const a = new GrantManager({ store, secrets: box, log: silentLogger, now: c.now });
  const b = new GrantManager({ store, secrets: box, log: silentLogger, now: c.now });
  await b.write(key, meta(c.now()), tokens(1, c.now() + 24 * 3_600_000));
  const refresher = async () => assert.fail("no refresh expected");
  assert.equal((await a.token(key, refresher)).kind, "ok", "instance A caches the day-long token");
  await b.remove(key); // the user disconnects through instance B
  c.advance(61_000);
  assert.deepEqual(await a.token(key, refresher), { kind: "missing" }, "instance A no longer uses it");
});

test("a refresh refused because a new connection replaced the grant meanwhile keeps the new connection", async () => {
  const { c, gm } = setup();
  await gm.write(key, meta(c.now()), tokens(1, c.now() - 1));
  const refresher = async () => {
    // The user connects again while the refresh runs; the new connection revokes the old
    // refresh token, so the authorization server refuses it.
    await gm.write(key, meta(c.now()), tokens(2, c.now() + 3_600_000));
    throw new TokenEndpointError("invalid_grant", "invalid_grant", new Error("revoked"));
  };
  assert.deepEqual(await gm.token(key, refresher), { kind: "ok", token: tokens(2, 0).accessToken });
  assert.equal((await gm.read(key))?.secret.refreshToken, "rt-2", "the new grant is kept");
  assert.equal(await gm.wasDropped(key), false);
});

test("the cache is bounded", async () => {
  const c = clock();
  const store = new MemoryStore({ now: c.now });
  const gm = new GrantManager({ store, secrets: box, log: silentLogger, now: c.now, maxCache: 2 });
  for (const u of ["a", "b", "c"]) await gm.write(grantKey("n", u), meta(c.now(), { subject: u }), tokens(1, c.now() + 3_600_000));
  assert.equal(gm.cachedToken(grantKey("n", "a")), undefined);
  assert.ok(gm.cachedToken(grantKey("n", "c")));
});

test("a refresh token is never presented again after an answer was lost (the upstream may have rotated it)", async () => {
  const { c, gm } = setup();
  await gm.write(key, meta(c.now()), tokens(1, c.now() - 1));
  const sent: string[] = [];
  const lost = Object.assign(new Error("headers timeout"), { code: "UND_ERR_HEADERS_TIMEOUT" });
  await assert.rejects(
    gm.token(key, async (g) => {
      sent.push(g.secret.refreshToken!);
      throw new TokenEndpointError("temporary", undefined, lost);
    }),
    { status: 502 },
  );
  const again = await gm.token(key, async (g) => {
    sent.push(g.secret.refreshToken!);
    return tokens(2, c.now() + 3_600_000);
  });
  assert.deepEqual(again, { kind: "reconsent" });
  assert.deepEqual(sent, ["rt-1"], "rt-1 was presented once");
  assert.equal(await gm.read(key), undefined);
  assert.equal(await gm.wasDropped(key), true);
});

test("a refresh that never reached the upstream, or that it answered, is simply tried again", async () => {
  const { c, gm } = setup();
  await gm.write(key, meta(c.now()), tokens(1, c.now() - 1));
  const refused = new TokenEndpointError("temporary", undefined, Object.assign(new Error("fetch failed"), { cause: Object.assign(new Error("connect"), { code: "ECONNREFUSED" }) }));
  await assert.rejects(gm.token(key, async () => Promise.reject(refused)), { status: 502 });
  const answered = new TokenEndpointError("temporary", "temporarily_unavailable", Object.assign(new Error("503"), { status: 503 }));
  await assert.rejects(gm.token(key, async () => Promise.reject(answered)), { status: 502 });
  const r = await gm.token(key, async () => tokens(2, c.now() + 3_600_000));
  assert.equal(r.kind, "ok");
});

test("an interrupted refresh on an upstream seen not to rotate refresh tokens is tried again", async () => {
  const { c, gm } = setup();
  await gm.write(key, meta(c.now()), tokens(1, c.now() - 1));
  // The upstream answers a refresh with the same refresh token (no rotation).
  assert.equal((await gm.token(key, async () => tokens(2, c.now() + 1000, "rt-1"))).kind, "ok");
  assert.equal((await gm.read(key))!.meta.rotatesRefreshToken, false);
  c.advance(2000);
  const lost = Object.assign(new Error("socket"), { code: "UND_ERR_SOCKET" });
  await assert.rejects(gm.token(key, async () => Promise.reject(new TokenEndpointError("temporary", undefined, lost))), { status: 502 });
  const r = await gm.token(key, async () => tokens(3, c.now() + 3_600_000, "rt-1"));
  assert.equal(r.kind, "ok");
});
