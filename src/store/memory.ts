/**
 * In-process store for tests and single-process experiments. Nothing survives a restart and
 * locks only exclude callers inside this process.
 */
import {
  DEFAULT_LOCK_WAIT_MS,
  expiryFrom,
  LocalLocks,
  toJsonText,
  windowMs,
  type StoreClockOptions,
} from "./common.js";
import type { PutOptions, Store, StoredRecord } from "./types.js";

interface Row {
  json: string;
  version: number;
  expiresAt: number | undefined;
  updatedAt: number;
}

/** Options for {@link MemoryStore}. */
export type MemoryStoreOptions = StoreClockOptions;

/**
 * A {@link Store} kept in a Map. Values are stored as JSON text, so callers see the same
 * copy-on-read semantics as the SQL backends.
 */
export class MemoryStore implements Store {
  readonly kind = "memory";
  private readonly now: () => number;
  private readonly records = new Map<string, Map<string, Row>>();
  private readonly counters = new Map<string, { value: number; resetAt: number }>();
  private readonly locks = new LocalLocks();
  private closed = false;

  constructor(opts: MemoryStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
  }

  private live(ns: string, key: string): Row | undefined {
    const row = this.records.get(ns)?.get(key);
    if (!row) return undefined;
    if (row.expiresAt !== undefined && row.expiresAt <= this.now()) {
      this.records.get(ns)?.delete(key);
      return undefined;
    }
    return row;
  }

  private check(): void {
    if (this.closed) throw new Error("store is closed");
  }

  async get<T = unknown>(ns: string, key: string): Promise<StoredRecord<T> | undefined> {
    this.check();
    const row = this.live(ns, key);
    return row ? toRecord<T>(row) : undefined;
  }

  async put<T = unknown>(ns: string, key: string, value: T, opts: PutOptions = {}): Promise<number | undefined> {
    this.check();
    const json = toJsonText(value);
    const now = this.now();
    const expiresAt = expiryFrom(now, opts.ttlSeconds);
    const current = this.live(ns, key);
    const currentVersion = current?.version ?? 0;
    if (opts.ifVersion !== undefined && opts.ifVersion !== currentVersion) return undefined;
    let table = this.records.get(ns);
    if (!table) this.records.set(ns, (table = new Map()));
    const version = currentVersion + 1;
    table.set(key, { json, version, expiresAt, updatedAt: now });
    return version;
  }

  async take<T = unknown>(ns: string, key: string): Promise<StoredRecord<T> | undefined> {
    this.check();
    const row = this.live(ns, key);
    if (!row) return undefined;
    this.records.get(ns)?.delete(key);
    return toRecord<T>(row);
  }

  async delete(ns: string, key: string): Promise<boolean> {
    this.check();
    const existed = this.live(ns, key) !== undefined;
    this.records.get(ns)?.delete(key);
    return existed;
  }

  async list<T = unknown>(ns: string, prefix = "", limit?: number): Promise<Array<{ key: string } & StoredRecord<T>>> {
    this.check();
    const table = this.records.get(ns);
    if (!table) return [];
    const keys = [...table.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys);
    const out: Array<{ key: string } & StoredRecord<T>> = [];
    for (const key of keys) {
      if (limit !== undefined && out.length >= limit) break;
      const row = this.live(ns, key);
      if (row) out.push({ key, ...toRecord<T>(row) });
    }
    return out;
  }

  async withLock<T>(name: string, fn: () => Promise<T>, opts: { waitMs?: number; leaseMs?: number } = {}): Promise<T> {
    this.check();
    const release = await this.locks.acquire(name, opts.waitMs ?? DEFAULT_LOCK_WAIT_MS);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  async incr(ns: string, key: string, windowSeconds: number, by = 1): Promise<{ value: number; resetAt: number }> {
    this.check();
    const now = this.now();
    const id = `${ns}\u0000${key}`;
    const current = this.counters.get(id);
    if (!current || current.resetAt <= now) {
      const fresh = { value: by, resetAt: now + windowMs(windowSeconds) };
      this.counters.set(id, fresh);
      return { ...fresh };
    }
    current.value += by;
    return { ...current };
  }

  async namespaces(): Promise<string[]> {
    this.check();
    await this.sweep();
    return [...this.records].filter(([, t]) => t.size > 0).map(([ns]) => ns).sort(compareKeys);
  }

  async sweep(): Promise<number> {
    this.check();
    const now = this.now();
    let n = 0;
    for (const table of this.records.values()) {
      for (const [key, row] of table) {
        if (row.expiresAt !== undefined && row.expiresAt <= now) {
          table.delete(key);
          n++;
        }
      }
    }
    for (const [id, c] of this.counters) {
      if (c.resetAt <= now) {
        this.counters.delete(id);
        n++;
      }
    }
    return n;
  }

  async ping(): Promise<void> {
    this.check();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.records.clear();
    this.counters.clear();
  }
}

function toRecord<T>(row: Row): StoredRecord<T> {
  return { value: JSON.parse(row.json) as T, version: row.version, expiresAt: row.expiresAt, updatedAt: row.updatedAt };
}

/** Byte-wise (code unit) ordering, the same as SQL `COLLATE "C"` / SQLite's default BINARY. */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
