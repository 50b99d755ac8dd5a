import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { GatewayError } from "../../src/errors.js";
import { createStore, defaultSqlitePath } from "../../src/store/index.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { TestClock, runStoreContract } from "./store-contract.js";
import { crash, lockInChild } from "./store-lock-process.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-store-sqlite-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const tempFile = () => path.join(root, `t${++n}`, "nested", "data.db");

/** Every byte SQLite wrote: the database, its WAL and shared-memory files. */
function rawDump(file: string): string {
  return ["", "-wal", "-shm"]
    .map((suffix) => (fs.existsSync(file + suffix) ? fs.readFileSync(file + suffix).toString("latin1") : ""))
    .join("\n");
}

runStoreContract({
  name: "sqlite",
  open: async (now) => {
    const file = tempFile();
    return {
      store: SqliteStore.open(file, { now }),
      peer: async () => SqliteStore.open(file, { now }),
      rawDump: async () => rawDump(file),
    };
  },
});

describe("SQLite backend specifics", () => {
  test("creates parent directories, a 0600 file, WAL mode and numbered migrations", async () => {
    const file = tempFile();
    const store = SqliteStore.open(file);
    try {
      assert.ok(fs.existsSync(file));
      if (process.platform !== "win32") assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.deepEqual(store.migrations(), [1]);
      await store.put("ns", "k", "v");
      if (process.platform !== "win32") {
        for (const suffix of ["-wal", "-shm"]) assert.equal(fs.statSync(file + suffix).mode & 0o777, 0o600, suffix);
      }
    } finally {
      await store.close();
    }
    const raw = new Database(file, { readonly: true });
    try {
      assert.equal(raw.pragma("journal_mode", { simple: true }), "wal");
      const tables = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
      assert.deepEqual(
        tables.map((t) => (t as { name: string }).name),
        ["counters", "locks", "records", "schema_migrations"],
      );
    } finally {
      raw.close();
    }
    const again = SqliteStore.open(file);
    try {
      assert.deepEqual(again.migrations(), [1], "reopening applies nothing twice");
      assert.equal((await again.get("ns", "k"))!.value, "v", "data survives a reopen");
    } finally {
      await again.close();
    }
  });

  test("tightens the mode of an existing database file", async (t) => {
    if (process.platform === "win32") return t.skip("no POSIX modes");
    const file = tempFile();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, "");
    fs.chmodSync(file, 0o644);
    const store = SqliteStore.open(file);
    await store.close();
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });

  test("createStore resolves sqlite specs against the project directory", async () => {
    const projectDir = path.join(root, `proj${++n}`);
    const byDefault = await createStore("", { projectDir });
    const relative = await createStore("sqlite:state/x.db", { projectDir });
    try {
      assert.equal(byDefault.kind, "sqlite");
      assert.equal((byDefault as SqliteStore).file, defaultSqlitePath(projectDir));
      assert.equal((relative as SqliteStore).file, path.join(projectDir, "state", "x.db"));
      assert.ok(fs.existsSync(path.join(projectDir, ".tollgate", "data.db")));
      assert.equal((await createStore("memory:", { projectDir })).kind, "memory");
      await assert.rejects(createStore("redis://x", { projectDir }), /unsupported store/);
    } finally {
      await byDefault.close();
      await relative.close();
    }
  });

  test("a stale lease of a crashed holder is taken over", async () => {
    const file = tempFile();
    const clock = new TestClock();
    const a = SqliteStore.open(file, { now: clock.now });
    const b = SqliteStore.open(file, { now: clock.now });
    try {
      // Simulate a holder that died mid-lock: its lease row stays behind.
      const raw = new Database(file);
      raw.prepare("INSERT INTO locks (name, owner, expires_at) VALUES (?, ?, ?)").run("L", "dead-process", clock.t + 5_000);
      raw.close();
      await assert.rejects(a.withLock("L", async () => 1, { waitMs: 50 }), (e: unknown) => {
        return e instanceof GatewayError && e.code === "lock_timeout";
      });
      clock.advance(5_000);
      assert.equal(await b.withLock("L", async () => "taken over", { waitMs: 1_000 }), "taken over");
      assert.equal(await a.sweep(), 0, "the released lease row is gone");
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("a long holder renews its lease so it is not taken over", async () => {
    const file = tempFile();
    const a = SqliteStore.open(file);
    const b = SqliteStore.open(file);
    try {
      let bRan = false;
      await a.withLock(
        "L",
        async () => {
          // Outlive the 60 ms lease several times over while b keeps trying.
          await assert.rejects(b.withLock("L", async () => (bRan = true), { waitMs: 300, leaseMs: 60 }), {
            code: "lock_timeout",
          });
        },
        { leaseMs: 60 },
      );
      assert.equal(bRan, false);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("a real second process holding the lock excludes this one until it dies", async () => {
    const file = tempFile();
    await SqliteStore.open(file).close();
    const child = await lockInChild(`sqlite:${file}`, "refresh:grant", 400);
    const store = SqliteStore.open(file);
    try {
      await assert.rejects(store.withLock("refresh:grant", async () => 1, { waitMs: 100 }), { code: "lock_timeout" });
      await crash(child);
      assert.equal(await store.withLock("refresh:grant", async () => "mine", { waitMs: 10_000 }), "mine");
    } finally {
      await crash(child);
      await store.close();
    }
  });
});
