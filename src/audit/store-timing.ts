/**
 * A Store that reports how long each operation took (`tollgate_store_operation_duration_seconds`).
 * `withLock` is timed until the lock is held, not for the work done under it.
 */
import { performance } from "node:perf_hooks";
import type { PutOptions, Store, StoredRecord } from "../store/types.js";
import type { McpMetrics } from "./metrics.js";

export class TimedStore implements Store {
  readonly namespaces?: () => Promise<string[]>;
  constructor(
    readonly inner: Store,
    private readonly metrics: McpMetrics,
  ) {
    if (inner.namespaces) this.namespaces = () => this.#time("namespaces", () => inner.namespaces!());
  }

  get kind(): string {
    return this.inner.kind;
  }

  async #time<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const t = performance.now();
    let failed = true;
    try {
      const r = await fn();
      failed = false;
      return r;
    } finally {
      this.metrics.storeOperation(op, (performance.now() - t) / 1000, failed);
    }
  }

  get<T = unknown>(ns: string, key: string): Promise<StoredRecord<T> | undefined> {
    return this.#time("get", () => this.inner.get<T>(ns, key));
  }
  put<T = unknown>(ns: string, key: string, value: T, opts?: PutOptions): Promise<number | undefined> {
    return this.#time("put", () => this.inner.put(ns, key, value, opts));
  }
  take<T = unknown>(ns: string, key: string): Promise<StoredRecord<T> | undefined> {
    return this.#time("take", () => this.inner.take<T>(ns, key));
  }
  delete(ns: string, key: string): Promise<boolean> {
    return this.#time("delete", () => this.inner.delete(ns, key));
  }
  list<T = unknown>(ns: string, prefix?: string, limit?: number): Promise<Array<{ key: string } & StoredRecord<T>>> {
    return this.#time("list", () => this.inner.list<T>(ns, prefix, limit));
  }
  withLock<T>(name: string, fn: () => Promise<T>, opts?: { waitMs?: number; leaseMs?: number }): Promise<T> {
    const t = performance.now();
    let held = false;
    return this.inner
      .withLock(
        name,
        () => {
          held = true;
          this.metrics.storeOperation("lock", (performance.now() - t) / 1000, false);
          return fn();
        },
        opts,
      )
      .catch((err: unknown) => {
        if (!held) this.metrics.storeOperation("lock", (performance.now() - t) / 1000, true);
        throw err;
      });
  }
  incr(ns: string, key: string, windowSeconds: number, by?: number): Promise<{ value: number; resetAt: number }> {
    return this.#time("incr", () => this.inner.incr(ns, key, windowSeconds, by));
  }
  sweep(): Promise<number> {
    return this.#time("sweep", () => this.inner.sweep());
  }
  ping(): Promise<void> {
    return this.#time("ping", () => this.inner.ping());
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
