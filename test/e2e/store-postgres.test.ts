import assert from "node:assert/strict";
import { describe, test } from "node:test";
import pg from "pg";
import { createStore } from "../../src/store/index.js";
import { PostgresStore, lockKey } from "../../src/store/postgres.js";
import { TestClock, runStoreContract } from "./store-contract.js";
import { crash, lockInChild } from "./store-lock-process.js";
import { dropSchema, findTestPostgres, uniqueSchema } from "./store-postgres-env.js";

const pgEnv = await findTestPostgres();

if (!pgEnv.url) {
  if (pgEnv.required) {
    test("PostgreSQL is required when CI=true", () => assert.fail(pgEnv.reason));
  } else {
    test("Store contract: postgres", { skip: pgEnv.reason }, () => undefined);
  }
} else {
  const url = pgEnv.url;
  const withSchema = (schema: string) => `${url}${url.includes("?") ? "&" : "?"}schema=${schema}`;

  runStoreContract({
    name: "postgres",
    open: async (now) => {
      const schema = uniqueSchema("c");
      const store = await PostgresStore.connect(withSchema(schema), { now, max: 4 });
      return {
        store,
        peer: () => PostgresStore.connect(withSchema(schema), { now, max: 4 }),
        rawDump: async () => {
          const c = new pg.Client({ connectionString: url });
          await c.connect();
          try {
            const r = await c.query(`SELECT string_agg(ns || key || value, '|') AS all FROM "${schema}".records`);
            return String(r.rows[0]?.all ?? "");
          } finally {
            await c.end();
          }
        },
        cleanup: () => dropSchema(url, schema),
      };
    },
  });

  describe("PostgreSQL backend specifics", () => {
    test("concurrent first starts migrate once, in their own schema", async () => {
      const schema = uniqueSchema("m");
      const stores = await Promise.all(
        Array.from({ length: 4 }, () => createStore(withSchema(schema), { projectDir: "." })),
      );
      try {
        for (const s of stores) assert.equal(s.kind, "postgres");
        assert.equal((stores[0] as PostgresStore).schema, schema);
        assert.deepEqual(await (stores[0] as PostgresStore).migrations(), [1]);
        await stores[0]!.put("ns", "k", "v");
        assert.equal((await stores[3]!.get("ns", "k"))!.value, "v", "instances share data");
        const other = await PostgresStore.connect(url, { schema: uniqueSchema("o") });
        try {
          assert.equal(await other.get("ns", "k"), undefined, "schemas isolate");
        } finally {
          await other.close();
          await dropSchema(url, other.schema);
        }
      } finally {
        for (const s of stores) await s.close();
        await dropSchema(url, schema);
      }
    });

    test("rejects unsafe schema names", async () => {
      await assert.rejects(PostgresStore.connect(url, { schema: 'x"; DROP TABLE y; --' }), /must match/);
    });

    test("lock keys are stable signed 64-bit values", () => {
      const k = lockKey("s:refresh:a");
      assert.equal(k, lockKey("s:refresh:a"));
      assert.notEqual(k, lockKey("s:refresh:b"));
      const v = BigInt(k);
      assert.ok(v >= -(2n ** 63n) && v < 2n ** 63n);
    });

    test("a lock holder in a real second process excludes this one until it dies", async () => {
      const schema = uniqueSchema("p");
      const store = await PostgresStore.connect(withSchema(schema));
      const child = await lockInChild(withSchema(schema), "refresh:grant", 30_000);
      try {
        await assert.rejects(store.withLock("refresh:grant", async () => 1, { waitMs: 100 }), { code: "lock_timeout" });
        assert.equal(await store.withLock("other", async () => "free", { waitMs: 1_000 }), "free");
        // The advisory lock dies with the holder's connection: no lease to wait out.
        await crash(child);
        assert.equal(await store.withLock("refresh:grant", async () => "mine", { waitMs: 10_000 }), "mine");
      } finally {
        await crash(child);
        await store.close();
        await dropSchema(url, schema);
      }
    });

    test("many waiters on one lock do not starve the query pool", async () => {
      const schema = uniqueSchema("w");
      const clock = new TestClock();
      const store = await PostgresStore.connect(withSchema(schema), { now: clock.now, max: 2 });
      try {
        await store.put("ns", "n", 0);
        await Promise.all(
          Array.from({ length: 10 }, () =>
            store.withLock("hot", async () => {
              const r = await store.get<number>("ns", "n");
              await store.put("ns", "n", r!.value + 1);
            }),
          ),
        );
        assert.equal((await store.get<number>("ns", "n"))!.value, 10);
      } finally {
        await store.close();
        await dropSchema(url, schema);
      }
    });
  });
}
