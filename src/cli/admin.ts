/**
 * Offline commands that work on a project's store: `keys rotate` (re-encrypt secrets with the
 * newest key) and `connections` (list stored connections without their secrets).
 */
import fs from "node:fs/promises";
import path from "node:path";
import { loadEnv } from "../project/env.js";
import { createSecretBox } from "../store/crypto.js";
import { createStore } from "../store/index.js";
import { rotateSecrets } from "../store/rotate.js";
import type { Store } from "../store/types.js";
import { queryAudit, type AuditQuery } from "../audit/store-sink.js";
import { AuditEvents } from "../audit/events.js";
import { reportFailure } from "./output.js";
import { loggerFromEnv, modeFromEnv, resolveKeyRing, type Env } from "./services.js";

export interface AdminOptions {
  projectDir: string;
  env: Env;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

/**
 * Refuses a project folder that does not exist: opening the default store there would create
 * the folder (and an empty database) instead of finding the project the user meant.
 */
async function requireProjectDir(dir: string): Promise<void> {
  let stat;
  try {
    stat = await fs.stat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error(`project folder ${dir} does not exist (give --project DIR, or run the command inside the project folder)`);
    }
    throw err;
  }
  if (!stat.isDirectory()) throw new Error(`${dir} is not a folder (--project names the project folder)`);
}

async function openStore(opts: AdminOptions): Promise<{ store: Store; env: Env }> {
  const dir = path.resolve(opts.projectDir);
  await requireProjectDir(dir);
  const { env } = await loadEnv(dir, opts.env);
  const log = loggerFromEnv(env, "warn");
  const store = await createStore(env.TOLLGATE_STORE?.trim() || undefined, { projectDir: dir, log });
  return { store, env };
}

/** `tollgate keys rotate`: re-encrypts every secret sealed with an older key. */
export async function keysRotate(opts: AdminOptions): Promise<number> {
  let store: Store | undefined;
  try {
    const opened = await openStore(opts);
    store = opened.store;
    const log = loggerFromEnv(opened.env, "warn");
    const box = createSecretBox(resolveKeyRing(opened.env, path.resolve(opts.projectDir), modeFromEnv(opened.env), log));
    const r = await rotateSecrets(store, box, { log });
    opts.stdout(
      `re-encrypted ${r.rotated} of ${r.scanned} sealed record(s) with key "${box.currentKeyId}"` +
        (r.failed.length ? `; ${r.failed.length} could not be opened with the configured keys` : ""),
    );
    for (const f of r.failed) opts.stderr(`cannot open ${f.ns}/${f.key}`);
    return r.failed.length ? 1 : 0;
  } catch (err) {
    return reportFailure(err, opts.stderr);
  } finally {
    await store?.close();
  }
}

const SECRET_FIELD = /sealed|token|secret|verifier|code|password|ticket/i;

/** Records keep times as milliseconds since the epoch in fields named `…At` (and audit's `time`). */
const TIME_FIELD = /At$|^time$/;

/** An ISO 8601 UTC timestamp for a stored time in ms (anything else is returned unchanged). */
function isoTime(v: unknown): unknown {
  return typeof v === "number" && Number.isFinite(v) ? new Date(v).toISOString() : v;
}

/**
 * Copies metadata of a stored record, leaving out anything that could hold a secret; times
 * become ISO 8601 (UTC), like every timestamp the CLI prints.
 */
function publicFields(value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== "object") return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (SECRET_FIELD.test(k)) continue;
    if (v !== null && typeof v === "object") continue;
    out[k] = TIME_FIELD.test(k) ? isoTime(v) : v;
  }
  return out;
}

/** `tollgate connections`: lists stored connections (namespace `grants`) without secrets. */
export async function listConnections(opts: AdminOptions & { json: boolean }): Promise<number> {
  let store: Store | undefined;
  try {
    store = (await openStore(opts)).store;
    const records = await store.list("grants");
    const rows = records.map((r) => ({
      key: r.key,
      updatedAt: new Date(r.updatedAt).toISOString(),
      expiresAt: r.expiresAt === undefined ? undefined : new Date(r.expiresAt).toISOString(),
      ...publicFields(r.value),
    }));
    if (opts.json) opts.stdout(JSON.stringify(rows, null, 2));
    else if (rows.length === 0) opts.stdout("no connections");
    else for (const row of rows) opts.stdout(Object.entries(row).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${String(v)}`).join("  "));
    return 0;
  } catch (err) {
    return reportFailure(err, opts.stderr);
  } finally {
    await store?.close();
  }
}

const AUDIT_COLUMNS = ["event", "subjectId", "upstreamServerId", "mcpMethod", "capabilityName", "outcome", "reasonCode", "latencyMs"] as const;

const OUTCOMES = ["success", "failure", "denied", "application_error", "connect_required", "partial", "cancelled"];
const EVENT_NAMES: string[] = Object.values(AuditEvents);

/** `tollgate audit`: recent events of the store sink, newest first, filtered. */
export async function listAudit(opts: AdminOptions & { json: boolean; query: AuditQuery }): Promise<number> {
  // A misspelt filter would silently match nothing: name the values that exist instead.
  const { outcome, event } = opts.query;
  if (outcome !== undefined && !OUTCOMES.includes(outcome)) {
    opts.stderr(`invalid --outcome "${outcome}" (one of: ${OUTCOMES.join(", ")})`);
    return 2;
  }
  if (event !== undefined && !EVENT_NAMES.includes(event)) {
    opts.stderr(`invalid --event "${event}" (one of: ${EVENT_NAMES.join(", ")})`);
    return 2;
  }
  let store: Store | undefined;
  try {
    store = (await openStore(opts)).store;
    const events = await queryAudit(store, opts.query);
    if (opts.json) opts.stdout(JSON.stringify(events.map((e) => ({ ...e, time: isoTime(e.time) })), null, 2));
    else if (events.length === 0) opts.stdout("no audit events (is TOLLGATE_AUDIT_SINK=store set on the gateway?)");
    else {
      for (const e of events) {
        const cols = AUDIT_COLUMNS.filter((k) => e[k] !== undefined).map((k) => `${k}=${String(e[k])}`);
        opts.stdout([isoTime(e.time), ...cols].join("  "));
      }
    }
    return 0;
  } catch (err) {
    return reportFailure(err, opts.stderr);
  } finally {
    await store?.close();
  }
}
