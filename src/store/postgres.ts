/**
 * The multi-instance store: PostgreSQL through a `pg` Pool. Several gateway instances on one
 * database behave as one gateway: every write is a single atomic statement, and `withLock` is a
 * session-level advisory lock held on a dedicated connection.
 *
 * Tables live in their own schema (default `tollgate`; `?schema=name` in the URL or the
 * `schema` option), created and migrated on connect under a transaction-scoped advisory lock.
 *
 * @see https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
 * @see https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT
 */
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import pg from "pg";
import type { Logger } from "../log.js";
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_LOCK_WAIT_MS,
  DEFAULT_QUERY_TIMEOUT_MS,
  LocalLocks,
  expiryFrom,
  lockTimeoutError,
  toJsonText,
  toRecord,
  windowMs,
  type RecordRow,
  type StoreClockOptions,
} from "./common.js";
import { INSTANCE } from "./owner.js";
import { pgFailure } from "./outage.js";
import type { PutOptions, Store, StoredRecord } from "./types.js";

/** Numbered schema migrations (`$S` is the quoted schema); append only. */
const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: "records, counters, locks",
    sql: `
      CREATE TABLE $S.records (
        ns text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        value text NOT NULL,
        version bigint NOT NULL,
        expires_at bigint,
        updated_at bigint NOT NULL,
        PRIMARY KEY (ns, key)
      );
      CREATE INDEX records_expires_at ON $S.records (expires_at) WHERE expires_at IS NOT NULL;
      CREATE TABLE $S.counters (
        ns text COLLATE "C" NOT NULL,
        key text NOT NULL,
        value bigint NOT NULL,
        reset_at bigint NOT NULL,
        PRIMARY KEY (ns, key)
      );
      CREATE INDEX counters_reset_at ON $S.counters (reset_at);
    `,
  },
];

/** Options for {@link PostgresStore.connect}. */
export interface PostgresStoreOptions extends StoreClockOptions {
  /** Schema holding the tables; overrides `?schema=` in the URL. Default `tollgate`. */
  schema?: string;
  log?: Logger;
  /** Pool size for queries (locks use a second pool of the same size). Default 10. */
  max?: number;
  /** Opening a connection, or waiting for a free one in the pool, gives up after this (ms). Default 5000. */
  connectTimeoutMs?: number;
  /** A statement gives up after this (ms): `statement_timeout` on the server, and a client-side timer for a server that stopped answering. Default 5000. */
  queryTimeoutMs?: number;
}


const LIVE = "(expires_at IS NULL OR expires_at > $3)";
/** Per-session settings sent once per new connection (ahead of its first query). */
const SESSION_SETUP = "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3";
const COLS = "value, version, expires_at, updated_at";

/** A {@link Store} over PostgreSQL. */
export class PostgresStore implements Store {
  readonly kind = "postgres";
  /** The schema holding the tables. */
  readonly schema: string;
  private readonly pool: pg.Pool;
  private readonly lockPool: pg.Pool;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  private readonly local = new LocalLocks();
  private readonly t: { records: string; counters: string };
  private closed = false;

  private readonly queryTimeout: number;

  private constructor(schema: string, pool: pg.Pool, lockPool: pg.Pool, opts: PostgresStoreOptions) {
    this.schema = schema;
    this.queryTimeout = opts.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
    this.pool = pool;
    this.lockPool = lockPool;
    this.now = opts.now ?? Date.now;
    this.log = opts.log;
    const s = quoteIdent(schema);
    this.t = { records: `${s}.records`, counters: `${s}.counters` };
  }

  /** Connects, creates the schema if needed and applies pending migrations. */
  static async connect(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const parsed = new URL(url);
    const schema = opts.schema ?? parsed.searchParams.get("schema") ?? "tollgate";
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
      throw new Error(`postgres schema "${schema}" must match [A-Za-z_][A-Za-z0-9_]{0,62}`);
    }
    parsed.searchParams.delete("schema");
    const queryTimeout = opts.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
    const config: pg.PoolConfig = {
      connectionString: parsed.toString(),
      max: opts.max ?? 10,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      // Names the process instance in pg_stat_activity / pg_locks (who holds which lock).
      application_name: `tollgate ${INSTANCE.id}`,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    };
    // The client-side timer outlasts statement_timeout a little, so a slow statement ends with
    // the server's own cancellation and only a silent server costs the connection.
    const pool = new pg.Pool({ ...config, query_timeout: queryTimeout + 500 });
    // Lock sessions wait on pg_advisory_lock for as long as the caller allows: per-query timers.
    const lockPool = new pg.Pool(config);
    const setups: Array<[pg.Pool, string]> = [
      [pool, `${SESSION_SETUP}; SET statement_timeout = ${Math.floor(queryTimeout)}`],
      [lockPool, SESSION_SETUP],
    ];
    for (const [p, setup] of setups) {
      // An idle client losing its connection must not crash the process; the pool replaces it.
      p.on("error", (err) => opts.log?.warn({ err: { message: err.message } }, "postgres idle client error"));
      // Queued ahead of the client's first query. Keepalives: the server ends (and frees the
      // advisory locks of) a session whose host vanished within ~25 s.
      p.on("connect", (client) => {
        client.query(setup).catch((err: Error) => opts.log?.warn({ err: { message: err.message } }, "postgres session settings refused"));
      });
    }
    const store = new PostgresStore(schema, pool, lockPool, opts);
    try {
      await store.migrate();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  /** One statement on the query pool; outages come out as `store_unavailable`. */
  private async q<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, params);
    } catch (err) {
      throw pgFailure(err);
    }
  }

  private async migrate(): Promise<void> {
    const s = quoteIdent(this.schema);
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      // Serializes concurrent first starts of several instances (CREATE SCHEMA IF NOT EXISTS races).
      await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [lockKey(`migrate:${this.schema}`)]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const done = new Set(
        (await client.query<{ version: number }>(`SELECT version FROM ${s}.schema_migrations`)).rows.map((r) => r.version),
      );
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        await client.query(m.sql.replaceAll("$S", s));
        await client.query(`INSERT INTO ${s}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
        this.log?.info({ schema: this.schema, migration: m.version }, "store migration applied");
      }
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** Applied migration versions, ascending (diagnostics and tests). */
  async migrations(): Promise<number[]> {
    const r = await this.q<{ version: number }>(
      `SELECT version FROM ${quoteIdent(this.schema)}.schema_migrations ORDER BY version`,
    );
    return r.rows.map((row) => row.version);
  }

  async get<T = unknown>(ns: string, key: string): Promise<StoredRecord<T> | undefined> {
    const r = await this.q<RecordRow>(
      `SELECT ${COLS} FROM ${this.t.records} WHERE ns = $1 AND key = $2 AND ${LIVE}`,
      [ns, key, this.now()],
    );
    return r.rows[0] ? toRecord<T>(r.rows[0]) : undefined;
  }

  async put<T = unknown>(ns: string, key: string, value: T, opts: PutOptions = {}): Promise<number | undefined> {
    const now = this.now();
    const params: unknown[] = [ns, key, now, toJsonText(value), expiryFrom(now, opts.ttlSeconds) ?? null];
    const rec = this.t.records;
    let sql: string;
    if (opts.ifVersion === undefined) {
      // An expired row that was not swept yet counts as absent: its version restarts at 1.
      sql = `INSERT INTO ${rec} AS r (ns, key, value, version, expires_at, updated_at) VALUES ($1, $2, $4, 1, $5, $3)
        ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value,
          version = CASE WHEN r.expires_at IS NOT NULL AND r.expires_at <= $3 THEN 1 ELSE r.version + 1 END,
          expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at
        RETURNING version`;
    } else if (opts.ifVersion === 0) {
      sql = `INSERT INTO ${rec} AS r (ns, key, value, version, expires_at, updated_at) VALUES ($1, $2, $4, 1, $5, $3)
        ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value, version = 1,
          expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at
        WHERE r.expires_at IS NOT NULL AND r.expires_at <= $3
        RETURNING version`;
    } else {
      sql = `UPDATE ${rec} SET value = $4, version = version + 1, expires_at = $5, updated_at = $3
        WHERE ns = $1 AND key = $2 AND version = $6 AND ${LIVE}
        RETURNING version`;
      params.push(opts.ifVersion);
    }
    const r = await this.q<{ version: string }>(sql, params);
    return r.rows[0] ? Number(r.rows[0].version) : undefined;
  }

  async take<T = unknown>(ns: string, key: string): Promise<StoredRecord<T> | undefined> {
    const r = await this.q<RecordRow>(
      `DELETE FROM ${this.t.records} WHERE ns = $1 AND key = $2 AND ${LIVE} RETURNING ${COLS}`,
      [ns, key, this.now()],
    );
    return r.rows[0] ? toRecord<T>(r.rows[0]) : undefined;
  }

  async delete(ns: string, key: string): Promise<boolean> {
    const r = await this.q<{ live: boolean }>(
      `DELETE FROM ${this.t.records} WHERE ns = $1 AND key = $2 RETURNING ${LIVE} AS live`,
      [ns, key, this.now()],
    );
    return r.rows[0]?.live === true;
  }

  async list<T = unknown>(ns: string, prefix = "", limit?: number): Promise<Array<{ key: string } & StoredRecord<T>>> {
    const r = await this.q<RecordRow & { key: string }>(
      `SELECT key, ${COLS} FROM ${this.t.records}
       WHERE ns = $1 AND key >= $2 AND starts_with(key, $2) AND ${LIVE}
       ORDER BY key LIMIT $4`,
      [ns, prefix, this.now(), limit ?? null],
    );
    return r.rows.map((row) => ({ key: row.key, ...toRecord<T>(row) }));
  }

  /**
   * Holds `pg_advisory_lock(hash(schema, name))` on a dedicated connection while `fn` runs. The
   * lock dies with the connection, so a crashed holder never blocks others (`leaseMs` is not
   * needed here). Callers in this process queue in memory first, so waiting never ties up more
   * than one connection per lock name.
   */
  async withLock<T>(name: string, fn: () => Promise<T>, opts: { waitMs?: number; leaseMs?: number } = {}): Promise<T> {
    const waitMs = opts.waitMs ?? DEFAULT_LOCK_WAIT_MS;
    const deadline = performance.now() + waitMs;
    const releaseLocal = await this.local.acquire(name, waitMs);
    let client: pg.PoolClient | undefined;
    let broken: Error | undefined;
    const onError = (err: Error): void => {
      broken = err;
      this.log?.warn({ lock: name, err: { message: err.message } }, "postgres lock connection lost");
    };
    let held = false;
    const key = lockKey(`${this.schema}:${name}`);
    // Lock statements carry their own client-side timers (the pool has none: the lock wait is
    // the caller's); a timer firing leaves the connection in an unknown state, so it is dropped.
    const query = async <R extends pg.QueryResultRow>(c: pg.PoolClient, text: string, values: unknown[], timeoutMs: number) => {
      try {
        return await c.query<R>({ text, values, query_timeout: timeoutMs } as pg.QueryConfig);
      } catch (err) {
        if ((err as { severity?: unknown }).severity === undefined) broken ??= err as Error;
        throw err;
      }
    };
    try {
      try {
        client = await connectWithin(this.lockPool, deadline - performance.now(), () => lockTimeoutError(name, waitMs));
        client.on("error", onError);
        const left = Math.floor(deadline - performance.now());
        if (left <= 0) {
          const r = await query<{ ok: boolean }>(client, "SELECT pg_try_advisory_lock($1::bigint) AS ok", [key], this.queryTimeout);
          if (!r.rows[0]?.ok) throw lockTimeoutError(name, waitMs);
        } else {
          await query(client, "SELECT set_config('lock_timeout', $1, false)", [`${left}ms`], this.queryTimeout);
          try {
            await query(client, "SELECT pg_advisory_lock($1::bigint)", [key], left + this.queryTimeout);
          } catch (err) {
            if ((err as { code?: string }).code === "55P03") throw lockTimeoutError(name, waitMs);
            throw err;
          } finally {
            if (!broken) await query(client, "RESET lock_timeout", [], this.queryTimeout).catch(() => undefined);
          }
        }
      } catch (err) {
        throw pgFailure(err);
      }
      held = true;
      const result = await fn();
      return result;
    } finally {
      if (client) {
        if (held && !broken) {
          await query(client, "SELECT pg_advisory_unlock($1::bigint)", [key], this.queryTimeout).catch((err: Error) => {
            broken = err;
          });
        }
        client.off("error", onError);
        // A connection in an unknown state is destroyed, which also frees any lock it held.
        client.release(broken ?? undefined);
      }
      releaseLocal();
    }
  }

  async incr(ns: string, key: string, windowSeconds: number, by = 1): Promise<{ value: number; resetAt: number }> {
    const now = this.now();
    const r = await this.q<{ value: string; reset_at: string }>(
      `INSERT INTO ${this.t.counters} AS c (ns, key, value, reset_at) VALUES ($1, $2, $3, $5)
       ON CONFLICT (ns, key) DO UPDATE SET
         value = CASE WHEN c.reset_at <= $4 THEN EXCLUDED.value ELSE c.value + EXCLUDED.value END,
         reset_at = CASE WHEN c.reset_at <= $4 THEN EXCLUDED.reset_at ELSE c.reset_at END
       RETURNING value, reset_at`,
      [ns, key, by, now, now + windowMs(windowSeconds)],
    );
    const row = r.rows[0]!;
    return { value: Number(row.value), resetAt: Number(row.reset_at) };
  }

  async namespaces(): Promise<string[]> {
    const r = await this.q<{ ns: string }>(
      `SELECT DISTINCT ns FROM ${this.t.records} WHERE expires_at IS NULL OR expires_at > $1 ORDER BY ns`,
      [this.now()],
    );
    return r.rows.map((row) => row.ns);
  }

  async sweep(): Promise<number> {
    const now = this.now();
    const a = await this.q(`DELETE FROM ${this.t.records} WHERE expires_at IS NOT NULL AND expires_at <= $1`, [now]);
    const b = await this.q(`DELETE FROM ${this.t.counters} WHERE reset_at <= $1`, [now]);
    return (a.rowCount ?? 0) + (b.rowCount ?? 0);
  }

  async ping(): Promise<void> {
    await this.q("SELECT 1");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.pool.end(), this.lockPool.end()]);
  }
}

/** Checks a client out of `pool`, giving up after `ms` (a client arriving later is returned). */
async function connectWithin(pool: pg.Pool, ms: number, onTimeout: () => Error): Promise<pg.PoolClient> {
  const pending = pool.connect();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      pending.then((c) => c.release(), () => undefined);
      reject(onTimeout());
    }, Math.max(0, ms));
  });
  try {
    return await Promise.race([pending, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Stable signed 64-bit advisory-lock key for `name` (decimal string for a `::bigint` cast). */
export function lockKey(name: string): string {
  return createHash("sha256").update(`tollgate:${name}`).digest().readBigInt64BE(0).toString();
}

function quoteIdent(id: string): string {
  return `"${id.replace(/"/g, '""')}"`;
}
