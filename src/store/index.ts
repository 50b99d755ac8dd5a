/**
 * Picks and opens the store backend from a spec string (`TOLLGATE_STORE`):
 *
 * - `memory:` — in-process, for tests;
 * - `sqlite:PATH` — embedded default; relative paths resolve against the project directory,
 *   an empty path (`sqlite:` or no spec at all) means `<project>/.tollgate/data.db`;
 * - `postgres://…` / `postgresql://…` — shared by several gateway instances.
 *
 * Backends load lazily so a memory store never loads the native SQLite module or `pg`.
 */
import path from "node:path";
import type { Logger } from "../log.js";
import type { Store } from "./types.js";
import { MemoryStore } from "./memory.js";

export type { Store, StoredRecord, PutOptions } from "./types.js";
export { MemoryStore } from "./memory.js";
export { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_QUERY_TIMEOUT_MS } from "./common.js";

/** Options for {@link createStore}. */
export interface CreateStoreOptions {
  /** Project directory; the SQLite default and relative SQLite paths live under it. */
  projectDir?: string;
  log?: Logger;
  /** Injectable clock (ms since epoch) for tests. */
  now?: () => number;
  /** PostgreSQL: opening a connection or waiting for a pooled one gives up after this (ms). Default 5000. */
  connectTimeoutMs?: number;
  /**
   * A statement gives up after this (ms). PostgreSQL: `statement_timeout` plus a client-side
   * timer; SQLite: the busy timeout (how long a write waits for another process's). Default 5000.
   */
  queryTimeoutMs?: number;
}


/** The default SQLite file of a project. */
export function defaultSqlitePath(projectDir: string): string {
  return path.join(projectDir, ".tollgate", "data.db");
}

/**
 * Opens the store named by `spec`. Throws an `Error` naming the problem for an unknown scheme.
 */
export async function createStore(spec: string | undefined, opts: CreateStoreOptions = {}): Promise<Store> {
  const s = (spec ?? "").trim();
  const projectDir = opts.projectDir ?? process.cwd();
  if (s === "memory" || s === "memory:") {
    return new MemoryStore({ now: opts.now });
  }
  if (s === "" || s === "sqlite" || s.startsWith("sqlite:")) {
    let file = s.startsWith("sqlite:") ? s.slice("sqlite:".length) : "";
    if (file.startsWith("//")) file = file.slice(2); // accept sqlite:///abs/path and sqlite://rel
    const resolved = file === "" ? defaultSqlitePath(projectDir) : path.resolve(projectDir, file);
    const { SqliteStore } = await import("./sqlite.js");
    const store = SqliteStore.open(resolved, { now: opts.now, busyTimeoutMs: opts.queryTimeoutMs });
    opts.log?.info({ store: "sqlite", file: resolved }, "store opened");
    return store;
  }
  if (/^postgres(ql)?:\/\//i.test(s)) {
    const { PostgresStore } = await import("./postgres.js");
    const store = await PostgresStore.connect(s, {
      now: opts.now,
      log: opts.log,
      connectTimeoutMs: opts.connectTimeoutMs,
      queryTimeoutMs: opts.queryTimeoutMs,
    });
    opts.log?.info({ store: "postgres", schema: store.schema }, "store opened");
    return store;
  }
  checkStoreSpec(s);
  throw new Error("unreachable");
}

/**
 * Throws an `Error` naming the problem (credentials hidden) when `spec` is not a store this
 * build opens: `memory:`, `sqlite:PATH` (or empty for the default file) or `postgres://…`.
 */
export function checkStoreSpec(spec: string | undefined): void {
  const s = (spec ?? "").trim();
  if (s === "memory" || s === "memory:" || s === "" || s === "sqlite" || s.startsWith("sqlite:") || /^postgres(ql)?:\/\//i.test(s)) return;
  throw new Error(`unsupported store "${s.replace(/\/\/[^@/]*@/, "//***@")}": use memory:, sqlite:PATH or postgres://…`);
}
export { sealJson, openJson, sealRecord, openRecord, isSealedValue, secretAad, type SealedValue } from "./sealed.js";
export { rotateSecrets, type RotateResult, type RotateOptions } from "./rotate.js";
