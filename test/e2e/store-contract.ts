/**
 * The behaviour every Store backend must share, written once and run against memory, SQLite
 * and PostgreSQL (store-*.test.ts). Each test opens a fresh, empty store with an injected clock.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { afterEach, describe, test } from "node:test";
import { GatewayError } from "../../src/errors.js";
import { createSecretBox } from "../../src/store/crypto.js";
import { rotateSecrets } from "../../src/store/rotate.js";
import { openRecord, sealRecord } from "../../src/store/sealed.js";
import type { Store } from "../../src/store/types.js";

/** A hand-driven clock (ms since epoch). */
export class TestClock {
  t = 1_800_000_000_000;
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A freshly opened, empty store over its own data. */
export interface OpenedStore {
  store: Store;
  /** Opens a second instance over the same data, as another process would (absent for memory). */
  peer?: () => Promise<Store>;
  /** Everything the backend persisted, as text (for the "no plaintext at rest" check). */
  rawDump?: () => Promise<string>;
  /** Removes the data (temp file, schema) after the stores are closed. */
  cleanup?: () => Promise<void>;
}

export interface ContractBackend {
  name: string;
  open(now: () => number): Promise<OpenedStore>;
}

const ticks = (n: number): Promise<void> =>
  Array.from({ length: n }).reduce<Promise<void>>((p) => p.then(() => new Promise((r) => setImmediate(r))), Promise.resolve());

/** Registers the contract tests for one backend. */
export function runStoreContract(backend: ContractBackend): void {
  describe(`Store contract: ${backend.name}`, () => {
    const toClose: Store[] = [];
    const cleanups: Array<() => Promise<void>> = [];

    afterEach(async () => {
      for (const s of toClose.splice(0)) await s.close();
      for (const c of cleanups.splice(0)) await c();
    });

    async function open(clock = new TestClock()) {
      const opened = await backend.open(clock.now);
      toClose.push(opened.store);
      if (opened.cleanup) cleanups.push(opened.cleanup);
      const peer = opened.peer
        ? async () => {
            const s = await opened.peer!();
            toClose.push(s);
            return s;
          }
        : undefined;
      return { ...opened, peer, clock, s: opened.store };
    }

    test("put/get round trip with versions and timestamps", async () => {
      const { s, clock } = await open();
      assert.equal(await s.get("ns", "k"), undefined);
      assert.equal(await s.put("ns", "k", { a: 1, nested: { b: [1, "x", null] } }), 1);
      clock.advance(5);
      assert.equal(await s.put("ns", "k", { a: 2 }), 2);
      const r = await s.get<{ a: number }>("ns", "k");
      assert.deepEqual(r, { value: { a: 2 }, version: 2, expiresAt: undefined, updatedAt: clock.t });
      r!.value.a = 99; // callers get copies
      assert.equal((await s.get<{ a: number }>("ns", "k"))!.value.a, 2);
      assert.equal(await s.get("other", "k"), undefined, "namespaces are separate");
      await assert.rejects(s.put("ns", "u", undefined), TypeError);
    });

    test("compare-and-swap on versions", async () => {
      const { s } = await open();
      assert.equal(await s.put("ns", "k", "a", { ifVersion: 1 }), undefined, "absent record is version 0");
      assert.equal(await s.put("ns", "k", "a", { ifVersion: 0 }), 1);
      assert.equal(await s.put("ns", "k", "b", { ifVersion: 0 }), undefined, "0 means must not exist");
      assert.equal(await s.put("ns", "k", "c", { ifVersion: 1 }), 2);
      assert.equal(await s.put("ns", "k", "stale", { ifVersion: 1 }), undefined);
      assert.deepEqual((await s.get("ns", "k"))!.value, "c", "a failed CAS writes nothing");
      assert.equal(await s.put("ns", "k", "d"), 3, "unconditional put bumps the version");
    });

    test("concurrent CAS writers: exactly one wins", async () => {
      const { s, peer } = await open();
      await s.put("ns", "k", 0);
      const other = peer ? await peer() : s;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? other : s).put("ns", "k", i, { ifVersion: 1 })),
      );
      assert.equal(results.filter((v) => v === 2).length, 1);
      assert.equal(results.filter((v) => v === undefined).length, 19);
      assert.equal((await s.get("ns", "k"))!.version, 2);
    });

    test("TTL expiry follows the injected clock", async () => {
      const { s, clock } = await open();
      const start = clock.t;
      assert.equal(await s.put("ns", "k", "v", { ttlSeconds: 10 }), 1);
      await s.put("ns", "forever", "v");
      assert.equal((await s.get("ns", "k"))!.expiresAt, start + 10_000);
      clock.advance(9_999);
      assert.ok(await s.get("ns", "k"), "alive just before expiry");
      clock.advance(1);
      assert.equal(await s.get("ns", "k"), undefined, "expired at expiresAt");
      assert.deepEqual((await s.list("ns")).map((r) => r.key), ["forever"]);
      assert.equal(await s.take("ns", "k"), undefined);
      assert.equal(await s.put("ns", "k", "x", { ifVersion: 1 }), undefined, "expired counts as absent");
      assert.equal(await s.put("ns", "k", "new", { ifVersion: 0 }), 1, "recreated at version 1");
      assert.equal((await s.get("ns", "k"))!.expiresAt, undefined, "a put without ttl clears expiry");
      await assert.rejects(s.put("ns", "bad", 1, { ttlSeconds: 0 }), RangeError);
    });

    test("take is single-use under concurrency", async () => {
      const { s, peer } = await open();
      await s.put("flow", "state1", { verifier: "v" }, { ttlSeconds: 60 });
      const other = peer ? await peer() : s;
      const got = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? other : s).take("flow", "state1")));
      const winners = got.filter((r) => r !== undefined);
      assert.equal(winners.length, 1);
      assert.deepEqual(winners[0]!.value, { verifier: "v" });
      assert.equal(await s.get("flow", "state1"), undefined);
    });

    test("delete reports whether a live record was removed", async () => {
      const { s, clock } = await open();
      await s.put("ns", "a", 1);
      await s.put("ns", "b", 1, { ttlSeconds: 1 });
      assert.equal(await s.delete("ns", "a"), true);
      assert.equal(await s.delete("ns", "a"), false);
      clock.advance(1_000);
      assert.equal(await s.delete("ns", "b"), false, "an expired record does not count");
    });

    test("list by prefix: ordered, limited, literal and case-sensitive", async () => {
      const { s } = await open();
      const keys = ["u:b", "u:a", "u:c", "v:a", "U:a", "u%x", "u_x", "u*x", "u?x", "u[x", "u\\x", "ü:a"];
      for (const k of keys) await s.put("ns", k, k);
      await s.put("other", "u:z", 1);
      assert.deepEqual((await s.list("ns", "u:")).map((r) => r.key), ["u:a", "u:b", "u:c"]);
      assert.deepEqual((await s.list("ns", "u:", 2)).map((r) => r.key), ["u:a", "u:b"]);
      for (const p of ["u%", "u_", "u*", "u?", "u[", "u\\"]) {
        assert.deepEqual((await s.list("ns", p)).map((r) => r.key), [`${p}x`], `prefix ${p} is literal`);
      }
      assert.deepEqual((await s.list("ns", "U")).map((r) => r.key), ["U:a"]);
      assert.deepEqual((await s.list("ns", "ü")).map((r) => r.key), ["ü:a"]);
      const all = await s.list<string>("ns");
      assert.equal(all.length, keys.length);
      assert.deepEqual(all.map((r) => r.key), [...keys].sort());
      assert.equal(all[0]!.value, all[0]!.key);
      assert.deepEqual(await s.list("missing"), []);
    });

    test("incr counts within a window and restarts after it", async () => {
      const { s, clock, peer } = await open();
      const start = clock.t;
      assert.deepEqual(await s.incr("rl", "u1", 60), { value: 1, resetAt: start + 60_000 });
      clock.advance(30_000);
      assert.deepEqual(await s.incr("rl", "u1", 60, 4), { value: 5, resetAt: start + 60_000 });
      assert.deepEqual(await s.incr("rl", "u2", 60), { value: 1, resetAt: clock.t + 60_000 }, "keys are separate");
      clock.advance(30_000);
      assert.deepEqual(await s.incr("rl", "u1", 60), { value: 1, resetAt: clock.t + 60_000 }, "new window");
      const other = peer ? await peer() : s;
      const values = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? other : s).incr("rl", "hot", 60)));
      assert.deepEqual([...values.map((v) => v.value)].sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i + 1));
    });

    test("sweep removes expired records and counters only", async () => {
      const { s, clock } = await open();
      await s.put("a", "short", 1, { ttlSeconds: 1 });
      await s.put("b", "short", 1, { ttlSeconds: 1 });
      await s.put("a", "long", 1, { ttlSeconds: 100 });
      await s.put("a", "forever", 1);
      await s.incr("rl", "x", 1);
      assert.equal(await s.sweep(), 0);
      clock.advance(1_000);
      assert.equal(await s.sweep(), 3);
      assert.equal(await s.sweep(), 0);
      assert.deepEqual((await s.list("a")).map((r) => r.key), ["forever", "long"]);
      assert.deepEqual(await s.incr("rl", "x", 1), { value: 1, resetAt: clock.t + 1_000 });
    });

    test("namespaces lists namespaces with live records", async () => {
      const { s, clock } = await open();
      await s.put("grants", "a", 1);
      await s.put("clients", "a", 1);
      await s.put("flow", "a", 1, { ttlSeconds: 1 });
      clock.advance(1_000);
      assert.deepEqual(await s.namespaces!(), ["clients", "grants"]);
    });

    test("withLock excludes concurrent holders, also across instances", async () => {
      const { s, peer } = await open();
      const other = peer ? await peer() : s;
      await s.put("ns", "counter", 0);
      let active = 0;
      let maxActive = 0;
      const run = (store: Store) =>
        store.withLock("refresh:grant1", async () => {
          active++;
          maxActive = Math.max(maxActive, active);
          const r = await store.get<number>("ns", "counter");
          await ticks(3); // give any other holder a chance to interleave
          await store.put("ns", "counter", r!.value + 1);
          active--;
          return r!.value;
        });
      const seen = await Promise.all(Array.from({ length: 12 }, (_, i) => run(i % 2 ? other : s)));
      assert.equal(maxActive, 1);
      assert.equal((await s.get<number>("ns", "counter"))!.value, 12, "no lost updates");
      assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i));
      // Different names do not block each other.
      const nested = await s.withLock("a", () => other.withLock("b", async () => "both", { waitMs: 2_000 }));
      assert.equal(nested, "both");
    });

    test("withLock times out with lock_timeout and frees the lock after a throw", async () => {
      const { s, peer } = await open();
      const other = peer ? await peer() : s;
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let entered!: () => void;
      const inside = new Promise<void>((r) => (entered = r));
      const holder = s.withLock("L", async () => {
        entered();
        await held;
        return "held";
      });
      try {
        await inside;
        await assert.rejects(other.withLock("L", async () => "never", { waitMs: 150 }), (err: unknown) => {
          assert.ok(err instanceof GatewayError);
          assert.equal(err.code, "lock_timeout");
          return true;
        });
      } finally {
        release(); // also on failure, so the stores can close
      }
      assert.equal(await holder, "held");
      await assert.rejects(other.withLock("L", async () => Promise.reject(new Error("boom"))), /boom/);
      assert.equal(await s.withLock("L", async () => "free", { waitMs: 2_000 }), "free");
    });

    test("sealed records: round trip, stored encrypted, bound to their key", async () => {
      const { s, rawDump } = await open();
      const box = createSecretBox([{ id: "k1", key: randomBytes(32) }]);
      const token = `at_${randomBytes(16).toString("hex")}`;
      await s.put("grants", "alice:linear", sealRecord(box, "grants", "alice:linear", { accessToken: token }, { scope: "read" }));
      const rec = await s.get<{ scope: string; sealed: string }>("grants", "alice:linear");
      assert.equal(rec!.value.scope, "read");
      assert.ok(!JSON.stringify(rec!.value).includes(token));
      assert.deepEqual(openRecord(box, "grants", "alice:linear", rec!.value), { accessToken: token });
      // An envelope moved to another user's record does not open.
      await s.put("grants", "mallory:linear", rec!.value);
      const moved = await s.get("grants", "mallory:linear");
      assert.throws(() => openRecord(box, "grants", "mallory:linear", moved!.value), { code: "decrypt_failed" });
      if (rawDump) assert.ok(!(await rawDump()).includes(token), "plaintext token found in the raw data");
    });

    test("key rotation: old key readable, rotateSecrets re-encrypts, old key can go", async () => {
      const { s, clock } = await open();
      const k1 = { id: "k1", key: randomBytes(32) };
      const k2 = { id: "k2", key: randomBytes(32) };
      const old = createSecretBox([k1]);
      const ring = createSecretBox([k1, k2]);
      await s.put("grants", "a", sealRecord(old, "grants", "a", "secret-a"), { ttlSeconds: 100 });
      await s.put("clients", "b", sealRecord(old, "clients", "b", { secret: "secret-b" }, { id: "b" }));
      await s.put("grants", "plain", { note: "no secret here" });
      assert.equal(openRecord(ring, "grants", "a", (await s.get("grants", "a"))!.value), "secret-a", "old key still reads");
      const fresh = sealRecord(ring, "grants", "c", "secret-c");
      assert.ok(fresh.sealed.startsWith("v1.k2."), "new writes use the newest key");
      await s.put("grants", "c", fresh);
      clock.advance(10_000);

      const result = await rotateSecrets(s, ring, { now: clock.now });
      assert.deepEqual(result, { scanned: 3, rotated: 2, failed: [] });
      const a = await s.get<{ sealed: string }>("grants", "a");
      assert.equal(a!.expiresAt, clock.t + 90_000, "remaining TTL is kept");
      assert.deepEqual((await s.get("grants", "plain"))!.value, { note: "no secret here" }, "plain records untouched");

      const onlyNew = createSecretBox([k2]);
      assert.equal(openRecord(onlyNew, "grants", "a", a!.value), "secret-a");
      assert.deepEqual(openRecord(onlyNew, "clients", "b", (await s.get("clients", "b"))!.value), { secret: "secret-b" });
      const b = await s.get<{ id: string; sealed: string }>("clients", "b");
      assert.equal(b!.value.id, "b", "plaintext metadata kept");
      assert.ok(b!.value.sealed.startsWith("v1.k2."));
      assert.deepEqual(await rotateSecrets(s, ring, { now: clock.now }), { scanned: 3, rotated: 0, failed: [] }, "idempotent");

      // A record sealed with a key that is no longer configured is reported, not destroyed.
      const lost = createSecretBox([{ id: "gone", key: randomBytes(32) }]);
      await s.put("grants", "lost", sealRecord(lost, "grants", "lost", "x"));
      const again = await rotateSecrets(s, onlyNew, { now: clock.now });
      assert.deepEqual(again.failed, [{ ns: "grants", key: "lost" }]);
      assert.ok(await s.get("grants", "lost"));
    });

    test("ping and close", async () => {
      const opened = await backend.open(Date.now);
      if (opened.cleanup) cleanups.push(opened.cleanup);
      await opened.store.ping();
      await opened.store.close();
      await assert.rejects(opened.store.get("ns", "k"));
      await opened.store.close(); // closing twice is harmless
    });
  });
}
