/**
 * The one storage interface behind grants, registered clients, flow state, the downstream
 * authorization server's data, rate-limit counters and locks.
 *
 * It is a namespaced, versioned key-value store with expiry. Values are JSON. Secrets are
 * encrypted by the caller (see `crypto.ts`) before they reach the store, with the record key as
 * AAD. Backends: `memory:` (tests), SQLite (embedded default), PostgreSQL (multi-instance).
 */

/** A stored record. `version` increases by one on every write (compare-and-swap). */
export interface StoredRecord<T = unknown> {
  value: T;
  version: number;
  /** Expiry in ms since epoch, or undefined for no expiry. */
  expiresAt: number | undefined;
  updatedAt: number;
}

export interface PutOptions {
  /** Expire the record after this many seconds. */
  ttlSeconds?: number;
  /**
   * Compare-and-swap: write only if the current version equals this (0 = must not exist).
   * On mismatch `put` returns undefined and writes nothing.
   */
  ifVersion?: number;
}

export interface Store {
  /** Backend name for logs and `/readyz` (`memory`, `sqlite`, `postgres`). */
  readonly kind: string;
  /** Reads a record; expired records read as undefined. */
  get<T = unknown>(ns: string, key: string): Promise<StoredRecord<T> | undefined>;
  /** Writes a record; returns its new version, or undefined when `ifVersion` did not match. */
  put<T = unknown>(ns: string, key: string, value: T, opts?: PutOptions): Promise<number | undefined>;
  /** Atomically reads and deletes (single-use values: state, codes, tickets). */
  take<T = unknown>(ns: string, key: string): Promise<StoredRecord<T> | undefined>;
  /** Deletes; true if something was deleted. */
  delete(ns: string, key: string): Promise<boolean>;
  /** Lists live records whose key starts with `prefix`, ordered by key. */
  list<T = unknown>(ns: string, prefix?: string, limit?: number): Promise<Array<{ key: string } & StoredRecord<T>>>;
  /**
   * Runs `fn` while holding an exclusive lock named `name`, across every process sharing the
   * store (SQLite: a lease row; PostgreSQL: an advisory lock). Waits up to `waitMs` to acquire,
   * then throws a GatewayError `lock_timeout`.
   */
  withLock<T>(name: string, fn: () => Promise<T>, opts?: { waitMs?: number; leaseMs?: number }): Promise<T>;
  /** Adds `by` to a counter living for `windowSeconds` from its first increment; returns the new value. */
  incr(ns: string, key: string, windowSeconds: number, by?: number): Promise<{ value: number; resetAt: number }>;
  /**
   * Names of the namespaces that currently hold records (for maintenance such as key rotation).
   * Optional so that test doubles need not implement it; every built-in backend does.
   */
  namespaces?(): Promise<string[]>;
  /** Deletes expired records (called periodically). */
  sweep(): Promise<number>;
  /** Throws when the backing service is unreachable (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
