/**
 * The embedded default store: one SQLite file (better-sqlite3) in WAL mode.
 *
 * Several processes may share the file: every write is a single statement or an IMMEDIATE
 * transaction, and `withLock` uses lease rows (owner + expiry, renewed while held) so processes
 * exclude each other. A lease whose holder is known to be dead (same host, its process gone —
 * see `owner.ts`) is taken over at once; any other lease once it expires.
 *
 * @see https://www.sqlite.org/wal.html
 * @see https://www.sqlite.org/lang_upsert.html
 * @see https://www.sqlite.org/lang_returning.html
 */
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import Database from "better-sqlite3";
import {
  DEFAULT_LOCK_LEASE_MS,
  DEFAULT_LOCK_WAIT_MS,
  LocalLocks,
  delay,
  expiryFrom,
  lockTimeoutError,
  toJsonText,
  toRecord,
  windowMs,
  type RecordRow,
  type StoreClockOptions,
} from "./common.js";
import { newOwner, ownerIsGone } from "./owner.js";
import { sqliteFailure } from "./outage.js";
import type { PutOptions, Store, StoredRecord } from "./types.js";

/** Numbered schema migrations; append only, never edit an applied one. */
const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: "records, counters, locks",
    sql: `
      CREATE TABLE records (
        ns TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        version INTEGER NOT NULL,
        expires_at INTEGER,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (ns, key)
      ) WITHOUT ROWID;
      CREATE INDEX records_expires_at ON records (expires_at) WHERE expires_at IS NOT NULL;
      CREATE TABLE counters (
        ns TEXT NOT NULL,
        key TEXT NOT NULL,
        value INTEGER NOT NULL,
        reset_at INTEGER NOT NULL,
        PRIMARY KEY (ns, key)
      ) WITHOUT ROWID;
      CREATE INDEX counters_reset_at ON counters (reset_at);
      CREATE TABLE locks (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
];

/** Options for {@link SqliteStore.open}. */
export interface SqliteStoreOptions extends StoreClockOptions {
  /** How long a statement waits for another process's write lock (ms). Default 5000. */
  busyTimeoutMs?: number;
}

const LIVE = "(expires_at IS NULL OR expires_at > @now)";

/** A {@link Store} over one SQLite file. */
export class SqliteStore implements Store {
  readonly kind = "sqlite";
  /** Absolute path of the database file. */
  readonly file: string;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly local = new LocalLocks();
  private readonly stmt: ReturnType<typeof prepareStatements>;

  private constructor(file: string, db: Database.Database, now: () => number) {
    this.file = file;
    this.db = db;
    this.now = now;
    this.stmt = prepareStatements(db);
  }

  /**
   * Opens (creating if needed, with parent directories) the database at `file`, applies
   * pending migrations and restricts the file to its owner (0600).
   */
  static open(file: string, opts: SqliteStoreOptions = {}): SqliteStore {
    const abs = path.resolve(file);
    fs.mkdirSync(path.dirname(abs), { recursive: true, mode: 0o700 });
    // Create the file ourselves so it never exists with looser permissions; SQLite gives the
    // -wal and -shm files the same mode as the database file.
    fs.closeSync(fs.openSync(abs, "a", 0o600));
    try {
      fs.chmodSync(abs, 0o600);
    } catch {
      // Not the owner (or a filesystem without modes): leave the file as it is.
    }
    const db = new Database(abs);
    try {
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      migrate(db);
    } catch (err) {
      db.close();
      throw err;
    }
    return new SqliteStore(abs, db, opts.now ?? Date.now);
  }

  /** Applied migration versions, ascending (diagnostics and tests). */
  migrations(): number[] {
    return (this.db.prepare("SELECT version FROM schema_migrations ORDER BY version").all() as Array<{ version: number }>).map(
      (r) => r.version,
    );
  }

  async get<T = unknown>(ns: string, key: string): Promise<StoredRecord<T> | undefined> {
    const row = this.run(() => this.stmt.get.get({ ns, key, now: this.now() })) as RecordRow | undefined;
    return row ? toRecord<T>(row) : undefined;
  }

  async put<T = unknown>(ns: string, key: string, value: T, opts: PutOptions = {}): Promise<number | undefined> {
    const now = this.now();
    const params = { ns, key, value: toJsonText(value), expires: expiryFrom(now, opts.ttlSeconds) ?? null, now };
    let row: { version: number } | undefined;
    if (opts.ifVersion === undefined) row = this.run(() => this.stmt.upsert.get(params)) as typeof row;
    else if (opts.ifVersion === 0) row = this.run(() => this.stmt.insertIfAbsent.get(params)) as typeof row;
    else row = this.run(() => this.stmt.updateIfVersion.get({ ...params, expected: opts.ifVersion })) as typeof row;
    return row?.version;
  }

  async take<T = unknown>(ns: string, key: string): Promise<StoredRecord<T> | undefined> {
    const row = this.run(() => this.stmt.take.get({ ns, key, now: this.now() })) as RecordRow | undefined;
    return row ? toRecord<T>(row) : undefined;
  }

  async delete(ns: string, key: string): Promise<boolean> {
    const row = this.run(() => this.stmt.delete.get({ ns, key, now: this.now() })) as { live: number } | undefined;
    return row?.live === 1;
  }

  async list<T = unknown>(ns: string, prefix = "", limit?: number): Promise<Array<{ key: string } & StoredRecord<T>>> {
    const params = { ns, prefix, pattern: `${globEscape(prefix)}*`, now: this.now(), limit: limit ?? -1 };
    const rows = this.run(() => this.stmt.list.all(params)) as Array<RecordRow & { key: string }>;
    return rows.map((r) => ({ key: r.key, ...toRecord<T>(r) }));
  }

  async withLock<T>(name: string, fn: () => Promise<T>, opts: { waitMs?: number; leaseMs?: number } = {}): Promise<T> {
    const waitMs = opts.waitMs ?? DEFAULT_LOCK_WAIT_MS;
    const leaseMs = opts.leaseMs ?? DEFAULT_LOCK_LEASE_MS;
    const deadline = performance.now() + waitMs;
    const releaseLocal = await this.local.acquire(name, waitMs);
    const owner = newOwner();
    let renew: NodeJS.Timeout | undefined;
    try {
      for (let attempt = 0; ; attempt++) {
        const got = this.run(() => this.stmt.acquireLock.run({ name, owner, now: this.now(), expires: this.now() + leaseMs }));
        if (got.changes === 1) break;
        const holder = this.run(() => this.stmt.lockHolder.get({ name })) as { owner: string } | undefined;
        if (holder && ownerIsGone(holder.owner)) {
          // The holder's process has ended (kill -9, crash): take the lock over now, not when its lease lapses.
          const taken = this.run(() => this.stmt.takeOverLock.run({ name, owner, dead: holder.owner, expires: this.now() + leaseMs }));
          if (taken.changes === 1) break;
        }
        const left = deadline - performance.now();
        if (left <= 0) throw lockTimeoutError(name, waitMs);
        await delay(Math.min(left, backoffMs(attempt)));
      }
      // Keep the lease alive while `fn` runs, so a slow holder is not mistaken for a dead one.
      renew = setInterval(() => {
        try {
          this.stmt.renewLock.run({ name, owner, expires: this.now() + leaseMs });
        } catch {
          // Database closed or busy; the next tick retries, the lease may lapse.
        }
      }, Math.max(10, Math.floor(leaseMs / 3)));
      renew.unref();
      return await fn();
    } finally {
      if (renew) clearInterval(renew);
      try {
        if (this.db.open) this.stmt.releaseLock.run({ name, owner });
      } catch {
        // The file failed under us: the row stays until its lease lapses; fn's outcome stands.
      } finally {
        releaseLocal();
      }
    }
  }

  async incr(ns: string, key: string, windowSeconds: number, by = 1): Promise<{ value: number; resetAt: number }> {
    const now = this.now();
    const row = this.run(() => this.stmt.incr.get({ ns, key, by, now, reset: now + windowMs(windowSeconds) })) as {
      value: number;
      reset_at: number;
    };
    return { value: row.value, resetAt: row.reset_at };
  }

  async namespaces(): Promise<string[]> {
    const rows = this.run(() => this.stmt.namespaces.all({ now: this.now() })) as Array<{ ns: string }>;
    return rows.map((r) => r.ns);
  }

  async sweep(): Promise<number> {
    const now = this.now();
    const tx = this.db.transaction(() => {
      let n = this.stmt.sweepRecords.run({ now }).changes;
      n += this.stmt.sweepCounters.run({ now }).changes;
      n += this.stmt.sweepLocks.run({ now }).changes;
      return n;
    });
    return this.run(() => tx.immediate());
  }

  /** Reads from the file (not just the connection), so a lost or unreadable file shows. */
  async ping(): Promise<void> {
    this.run(() => this.stmt.ping.get());
  }

  /** Runs statements; file, disk and lock failures come out as `store_unavailable`. */
  private run<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw sqliteFailure(err);
    }
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

function prepareStatements(db: Database.Database) {
  const cols = "value, version, expires_at, updated_at";
  return {
    get: db.prepare(`SELECT ${cols} FROM records WHERE ns = @ns AND key = @key AND ${LIVE}`),
    // An expired row that was not swept yet counts as absent: its version restarts at 1.
    upsert: db.prepare(`
      INSERT INTO records (ns, key, value, version, expires_at, updated_at)
      VALUES (@ns, @key, @value, 1, @expires, @now)
      ON CONFLICT (ns, key) DO UPDATE SET
        value = excluded.value,
        version = CASE WHEN records.expires_at IS NOT NULL AND records.expires_at <= @now
                       THEN 1 ELSE records.version + 1 END,
        expires_at = excluded.expires_at,
        updated_at = excluded.updated_at
      RETURNING version`),
    insertIfAbsent: db.prepare(`
      INSERT INTO records (ns, key, value, version, expires_at, updated_at)
      VALUES (@ns, @key, @value, 1, @expires, @now)
      ON CONFLICT (ns, key) DO UPDATE SET
        value = excluded.value, version = 1, expires_at = excluded.expires_at, updated_at = excluded.updated_at
      WHERE records.expires_at IS NOT NULL AND records.expires_at <= @now
      RETURNING version`),
    updateIfVersion: db.prepare(`
      UPDATE records SET value = @value, version = version + 1, expires_at = @expires, updated_at = @now
      WHERE ns = @ns AND key = @key AND version = @expected AND ${LIVE}
      RETURNING version`),
    take: db.prepare(`DELETE FROM records WHERE ns = @ns AND key = @key AND ${LIVE} RETURNING ${cols}`),
    delete: db.prepare(`DELETE FROM records WHERE ns = @ns AND key = @key RETURNING ${LIVE} AS live`),
    list: db.prepare(`
      SELECT key, ${cols} FROM records
      WHERE ns = @ns AND key >= @prefix AND key GLOB @pattern AND ${LIVE}
      ORDER BY key LIMIT @limit`),
    acquireLock: db.prepare(`
      INSERT INTO locks (name, owner, expires_at) VALUES (@name, @owner, @expires)
      ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
      WHERE locks.expires_at <= @now`),
    ping: db.prepare("SELECT count(*) AS n FROM schema_migrations"),
    lockHolder: db.prepare("SELECT owner FROM locks WHERE name = @name"),
    takeOverLock: db.prepare("UPDATE locks SET owner = @owner, expires_at = @expires WHERE name = @name AND owner = @dead"),
    renewLock: db.prepare("UPDATE locks SET expires_at = @expires WHERE name = @name AND owner = @owner"),
    releaseLock: db.prepare("DELETE FROM locks WHERE name = @name AND owner = @owner"),
    incr: db.prepare(`
      INSERT INTO counters (ns, key, value, reset_at) VALUES (@ns, @key, @by, @reset)
      ON CONFLICT (ns, key) DO UPDATE SET
        value = CASE WHEN counters.reset_at <= @now THEN excluded.value ELSE counters.value + excluded.value END,
        reset_at = CASE WHEN counters.reset_at <= @now THEN excluded.reset_at ELSE counters.reset_at END
      RETURNING value, reset_at`),
    namespaces: db.prepare(`SELECT DISTINCT ns FROM records WHERE ${LIVE} ORDER BY ns`),
    sweepRecords: db.prepare("DELETE FROM records WHERE expires_at IS NOT NULL AND expires_at <= @now"),
    sweepCounters: db.prepare("DELETE FROM counters WHERE reset_at <= @now"),
    sweepLocks: db.prepare("DELETE FROM locks WHERE expires_at <= @now"),
  };
}

/** Applies pending migrations inside one IMMEDIATE transaction (other processes wait). */
function migrate(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const apply = db.transaction(() => {
    const done = new Set(
      (db.prepare("SELECT version FROM schema_migrations").all() as Array<{ version: number }>).map((r) => r.version),
    );
    const record = db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
    }
  });
  apply.immediate();
}

/** Makes `s` match literally in a GLOB pattern (GLOB is case-sensitive, unlike LIKE). */
function globEscape(s: string): string {
  return s.replace(/[*?[]/g, (c) => `[${c}]`);
}

/** Short, growing, jittered waits between lease attempts: ~5 ms up to ~100 ms. */
function backoffMs(attempt: number): number {
  const base = Math.min(100, 5 * 2 ** Math.min(attempt, 5));
  return base / 2 + Math.random() * (base / 2);
}
