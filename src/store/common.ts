/**
 * Small pieces shared by the store backends: defaults, option types, row mapping and the errors they throw.
 */
import { GatewayError } from "../errors.js";
import type { StoredRecord } from "./types.js";

/** Options every backend accepts. */
export interface StoreClockOptions {
  /** Clock in ms since epoch; injectable so TTL and window tests need no sleeps. */
  now?: () => number;
}

/** Default connect timeout of the PostgreSQL store (`TOLLGATE_STORE_CONNECT_TIMEOUT_MS`). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Default statement timeout (PostgreSQL) and busy timeout (SQLite): `TOLLGATE_STORE_QUERY_TIMEOUT_MS`. */
export const DEFAULT_QUERY_TIMEOUT_MS = 5_000;

/** How long `withLock` waits for a lock when the caller does not say. */
export const DEFAULT_LOCK_WAIT_MS = 10_000;
/**
 * How long a lock lease lives before another process may take it over (SQLite). The holder
 * renews it every third of this while it runs, and a holder on the same host whose process has
 * ended is taken over at once (`owner.ts`); the lease only decides for holders elsewhere.
 */
export const DEFAULT_LOCK_LEASE_MS = 10_000;

/** The error `withLock` throws when the lock could not be acquired in time. */
export function lockTimeoutError(name: string, waitMs: number): GatewayError {
  return new GatewayError("lock_timeout", 503, "A shared resource is busy; try again shortly.", {
    details: { lock: name, waitMs },
  });
}

/** Serializes a value as the stored JSON text; rejects values JSON cannot represent. */
export function toJsonText(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError("store values must be JSON-serializable (got undefined)");
  return text;
}

/** Expiry instant for a TTL in seconds, or undefined for none. */
export function expiryFrom(now: number, ttlSeconds: number | undefined): number | undefined {
  if (ttlSeconds === undefined) return undefined;
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new RangeError("ttlSeconds must be a positive number");
  return now + Math.round(ttlSeconds * 1000);
}

/**
 * A `records` row as the SQL backends read it: SQLite returns the integer columns as numbers,
 * PostgreSQL returns its `bigint` columns as strings.
 */
export interface RecordRow {
  value: string;
  version: number | string;
  expires_at: number | string | null;
  updated_at: number | string;
}

/** Maps a `records` row to the {@link StoredRecord} callers see (value parsed, integers as numbers). */
export function toRecord<T>(row: RecordRow): StoredRecord<T> {
  return {
    value: JSON.parse(row.value) as T,
    version: Number(row.version),
    expiresAt: row.expires_at === null ? undefined : Number(row.expires_at),
    updatedAt: Number(row.updated_at),
  };
}

/** Validates a counter window. */
export function windowMs(windowSeconds: number): number {
  if (!Number.isFinite(windowSeconds) || windowSeconds <= 0) throw new RangeError("windowSeconds must be a positive number");
  return Math.round(windowSeconds * 1000);
}

/** Escapes `%`, `_` and `\` for a SQL `LIKE … ESCAPE '\'` prefix match. */
export function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Resolves after `ms` (lock back-off only; never used for test timing). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * FIFO mutexes keyed by name, inside one process. Backends put these in front of their
 * cross-process lock so callers in the same process queue here instead of polling the database.
 */
export class LocalLocks {
  private readonly queues = new Map<string, Array<() => void>>();

  /** Waits (up to `waitMs`) for `name`; resolves to a release function. */
  async acquire(name: string, waitMs: number): Promise<() => void> {
    const queue = this.queues.get(name);
    if (!queue) {
      this.queues.set(name, []);
    } else {
      await new Promise<void>((resolve, reject) => {
        const grant = (): void => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          const i = queue.indexOf(grant);
          if (i >= 0) queue.splice(i, 1);
          reject(lockTimeoutError(name, waitMs));
        }, waitMs);
        queue.push(grant);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const q = this.queues.get(name);
      const next = q?.shift();
      if (next) next();
      else this.queues.delete(name);
    };
  }
}
