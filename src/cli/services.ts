/**
 * Builds the gateway-wide services (settings, logger, store, secret box, dispatcher, gateway
 * endpoints) from an environment map. The CLI passes `process.env` merged with the project's
 * `.env`; tests pass a plain object. Nothing else in the code base reads the environment.
 */
import fs from "node:fs";
import path from "node:path";
import { Agent } from "undici";
import { createLogger, type Logger } from "../log.js";
import type { GatewayServices, GatewaySettings } from "../pipeline/services.js";
import { SystemRoutes } from "../routing/system-routes.js";
import { createSecretBox, generateKey, parseKeyRing, type KeyRingKey } from "../store/crypto.js";
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_QUERY_TIMEOUT_MS, checkStoreSpec, createStore, defaultSqlitePath } from "../store/index.js";
import { ensurePrivateDir, ensurePrivateFile, writePrivateFile } from "./private-files.js";
import { DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BATCH_MESSAGES } from "../mcp/messages.js";
import { createMetrics, type GatewayMetrics } from "../metrics.js";
import { tracingFromEnv } from "../tracing/index.js";
import { metricsExposureFromEnv, observabilityFromEnv, registerPublicMetrics } from "./observability.js";
import type { Store } from "../store/types.js";

/** Environment as a plain map (`process.env`-shaped). */
export type Env = Record<string, string | undefined>;

export interface BuildServicesOptions {
  env: Env;
  /** Absolute project directory (holds `.tollgate/` for the SQLite file and a dev key). */
  projectDir: string;
  /** Host and port the server listens on (for the default public URL). */
  host: string;
  port: number;
  /** Use this store instead of opening `TOLLGATE_STORE`. */
  store?: Store;
  log?: Logger;
  /** Settings that win over the environment (tests). */
  overrides?: Partial<GatewaySettings>;
  /**
   * Build everything as for serving, without touching anything outside the process
   * (`tollgate validate`): no development key file, no `.tollgate/` folder, no tracing exporter.
   * The store must be given (a memory store). Without `TOLLGATE_ENCRYPTION_KEY` (development) a
   * throwaway key is used.
   */
  dryRun?: boolean;
}

/** Thrown for an unusable environment (bad key, production without a key, bad number). */
export class EnvConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EnvConfigError";
  }
}

const DEFAULT_BASE_PATH = "/__tollgate";
const DEFAULT_MAX_BODY = 4 * 1024 * 1024;

const list = (v: string | undefined): string[] =>
  (v ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

const truthy = (v: string | undefined): boolean => /^(1|true|yes|on)$/i.test((v ?? "").trim());

/** `production` when `TOLLGATE_MODE` or `NODE_ENV` says so. */
export function modeFromEnv(env: Env): GatewaySettings["mode"] {
  const m = (env.TOLLGATE_MODE ?? env.NODE_ENV ?? "").trim().toLowerCase();
  return m === "production" ? "production" : "development";
}

/** Normalises a base path: leading slash, no trailing slash (`/` stays `""`-free as `/`). */
export function normalizeBasePath(v: string | undefined): string {
  const raw = (v ?? DEFAULT_BASE_PATH).trim();
  if (raw === "" || raw === "/") return "";
  const withSlash = raw.startsWith("/") ? raw : `/${raw}`;
  return withSlash.replace(/\/+$/, "");
}

/** Parses `TOLLGATE_ADMIN_CLAIM` (`roles=admin` or `groups=admins,owners`). */
export function parseAdminClaim(v: string | undefined): GatewaySettings["adminClaim"] {
  const raw = (v ?? "").trim();
  if (!raw) return undefined;
  const eq = raw.indexOf("=");
  if (eq <= 0 || eq === raw.length - 1) {
    throw new EnvConfigError(`TOLLGATE_ADMIN_CLAIM must look like "claim=value[,value…]", got "${raw}"`);
  }
  return { name: raw.slice(0, eq).trim(), values: list(raw.slice(eq + 1)) };
}

function hostForUrl(host: string): string {
  if (host === "0.0.0.0" || host === "::") return "localhost";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** A positive integer setting, or `fallback` when the variable is unset or blank. */
function positiveInt(env: Env, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new EnvConfigError(`${name} must be a positive integer`);
  return n;
}

/** Derives every gateway setting from the environment (without side effects). */
export function settingsFromEnv(env: Env, host: string, port: number): GatewaySettings {
  const publicUrl = (env.TOLLGATE_PUBLIC_URL?.trim() || `http://${hostForUrl(host)}:${port}`).replace(/\/+$/, "");
  try {
    const u = new URL(publicUrl);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("scheme");
  } catch {
    throw new EnvConfigError(`TOLLGATE_PUBLIC_URL must be an http(s) origin, got "${publicUrl}"`);
  }
  const maxBodyBytes = positiveInt(env, "TOLLGATE_MAX_BODY_BYTES", DEFAULT_MAX_BODY);
  const maxBatchMessages = positiveInt(env, "TOLLGATE_MAX_BATCH_MESSAGES", DEFAULT_MAX_BATCH_MESSAGES);
  const maxBatchBytes = positiveInt(env, "TOLLGATE_MAX_BATCH_BYTES", DEFAULT_MAX_BATCH_BYTES);
  const mode = modeFromEnv(env);
  const devLogin = truthy(env.TOLLGATE_DEV_LOGIN);
  if (devLogin && mode === "production") {
    // Behind a proxy that adds no forwarding header every visitor looks like loopback; the dev
    // login would then let anyone sign in as anyone. Production never runs it.
    throw new EnvConfigError("TOLLGATE_DEV_LOGIN cannot be enabled in production mode");
  }
  return {
    publicUrl,
    basePath: normalizeBasePath(env.TOLLGATE_BASE_PATH),
    devLogin,
    adminSubjects: list(env.TOLLGATE_ADMIN_SUBJECTS),
    adminClaim: parseAdminClaim(env.TOLLGATE_ADMIN_CLAIM),
    allowedUpstreamHosts: list(env.TOLLGATE_ALLOWED_UPSTREAM_HOSTS).map((h) => h.toLowerCase()),
    mode,
    maxBodyBytes,
    maxBatchMessages,
    maxBatchBytes,
  };
}

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** The checked `TOLLGATE_LOG_LEVEL` (default `fallback`). */
export function logLevelFromEnv(env: Env, fallback = "info"): string {
  const level = env.TOLLGATE_LOG_LEVEL?.trim().toLowerCase() || fallback;
  if (!LEVELS.includes(level)) {
    throw new EnvConfigError(`TOLLGATE_LOG_LEVEL must be one of ${LEVELS.join(", ")}, got "${level}"`);
  }
  return level;
}

/** The gateway logger at `TOLLGATE_LOG_LEVEL` (default `info`). */
export function loggerFromEnv(env: Env, fallback = "info"): Logger {
  return createLogger({ level: logLevelFromEnv(env, fallback) });
}

/** Path of the auto-generated development key. */
export function devKeyPath(projectDir: string): string {
  return path.join(projectDir, ".tollgate", "encryption.key");
}

/**
 * The key ring of `TOLLGATE_ENCRYPTION_KEY`, or `undefined` when it is unset in development
 * (a development key is then used). Touches no file.
 *
 * @throws EnvConfigError for a malformed key, or no key in production.
 */
export function keyRingFromEnv(env: Env, mode: GatewaySettings["mode"]): KeyRingKey[] | undefined {
  const spec = env.TOLLGATE_ENCRYPTION_KEY?.trim();
  if (spec) {
    try {
      return parseKeyRing(spec);
    } catch (err) {
      throw new EnvConfigError(`TOLLGATE_ENCRYPTION_KEY: ${(err as Error).message}`);
    }
  }
  if (mode === "production") {
    throw new EnvConfigError(
      `TOLLGATE_ENCRYPTION_KEY is required in production (generate one with \`${selfCommand()} keys generate\`)`,
    );
  }
  return undefined;
}

/**
 * How to run this CLI again from the current folder, the way it was run: `npx tollgate` when it
 * runs from an installed package (`node_modules`), else `node <path of bin/tollgate.js>` relative
 * to the current folder (a checkout; absolute when the checkout is not below it).
 */
export function selfCommand(script: string | undefined = process.argv[1], cwd: string = process.cwd()): string {
  if (!script) return "npx tollgate";
  let real = script;
  try {
    real = fs.realpathSync(script);
  } catch {
    // keep the path as given
  }
  if (real.split(path.sep).includes("node_modules")) return "npx tollgate";
  const rel = path.relative(cwd, real);
  const shown = rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : real;
  return `node ${shown.includes(" ") ? JSON.stringify(shown) : shown}`;
}

/** The warning printed (once per start) when stored tokens are encrypted with the development key. */
export function devKeyWarning(projectDir: string): string {
  return (
    `WARNING: TOLLGATE_ENCRYPTION_KEY is not set; stored tokens are encrypted with a development key kept in ` +
    `${devKeyPath(projectDir)}, which anyone who can read the project folder can use to decrypt them. ` +
    `Before real use, run \`${selfCommand()} keys generate\` and set TOLLGATE_ENCRYPTION_KEY to its output.`
  );
}

/**
 * Resolves the encryption key ring: `TOLLGATE_ENCRYPTION_KEY`, else (development only) a key
 * generated once into `<project>/.tollgate/encryption.key` (folder 0700, file 0600, whatever the
 * umask). Production refuses to run without a key. The caller warns about the development key
 * ({@link devKeyWarning}), once per start.
 */
export function resolveKeyRing(env: Env, projectDir: string, mode: GatewaySettings["mode"], log: Logger): KeyRingKey[] {
  const ring = keyRingFromEnv(env, mode);
  if (ring) return ring;
  const file = devKeyPath(projectDir);
  ensurePrivateDir(path.dirname(file), log);
  let key: string;
  try {
    writePrivateFile(file, `${(key = generateKey())}\n`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    ensurePrivateFile(file, log);
    key = fs.readFileSync(file, "utf8").trim();
  }
  try {
    return parseKeyRing(key);
  } catch (err) {
    throw new EnvConfigError(`${file}: ${(err as Error).message}`);
  }
}

/**
 * Registers `/healthz` (liveness) and `/readyz` (store reachable) on a route table, and
 * `/metrics` when a bearer token guards it (`TOLLGATE_METRICS_TOKEN`; see `observability.ts`).
 */
export function registerHealthRoutes(routes: SystemRoutes, store: Store, metrics?: GatewayMetrics, metricsToken?: string): void {
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", "cache-control": "no-store" },
    });
  routes.add(["GET"], "/healthz", () => json(200, { status: "ok" }));
  if (metrics) registerPublicMetrics(routes, metrics, metricsToken);
  routes.add(["GET"], "/readyz", async () => {
    try {
      await store.ping();
      return json(200, { status: "ok", store: store.kind });
    } catch {
      return json(503, { status: "unavailable", store: store.kind });
    }
  });
}

/**
 * Builds the services one gateway process shares. The store is opened from `TOLLGATE_STORE`
 * (default `sqlite:<project>/.tollgate/data.db`) unless `opts.store` is given.
 */
export async function buildServices(opts: BuildServicesOptions): Promise<GatewayServices> {
  const { env, projectDir } = opts;
  const log = opts.log ?? loggerFromEnv(env);
  const settings: GatewaySettings = { ...settingsFromEnv(env, opts.host, opts.port), ...opts.overrides };
  const dryRun = opts.dryRun === true;
  if (dryRun && !opts.store) throw new Error("buildServices: a dry run needs a store");
  const ring = dryRun
    ? (keyRingFromEnv(env, settings.mode) ?? parseKeyRing(generateKey()))
    : resolveKeyRing(env, projectDir, settings.mode, log);
  const secrets = createSecretBox(ring);
  const storeSpec = env.TOLLGATE_STORE?.trim() || undefined;
  try {
    checkStoreSpec(storeSpec);
  } catch (err) {
    throw new EnvConfigError(`TOLLGATE_STORE: ${(err as Error).message}`);
  }
  const connectTimeoutMs = positiveInt(env, "TOLLGATE_STORE_CONNECT_TIMEOUT_MS", DEFAULT_CONNECT_TIMEOUT_MS);
  const queryTimeoutMs = positiveInt(env, "TOLLGATE_STORE_QUERY_TIMEOUT_MS", DEFAULT_QUERY_TIMEOUT_MS);
  // The default SQLite file lives in the project's `.tollgate/`, which may predate these modes.
  if (!opts.store && (storeSpec === undefined || storeSpec === "sqlite" || storeSpec === "sqlite:")) {
    ensurePrivateDir(path.dirname(defaultSqlitePath(projectDir)), log);
  }
  const exposure = metricsExposureFromEnv(env);
  const opened = opts.store ?? (await createStore(storeSpec, { projectDir, log, connectTimeoutMs, queryTimeoutMs }));
  const systemRoutes = new SystemRoutes();
  const metrics = createMetrics();
  const { audit, mcpMetrics, store } = observabilityFromEnv(env, { log, store: opened, metrics });
  registerHealthRoutes(systemRoutes, store, metrics, exposure.token);
  // No per-origin connection cap: every open SSE stream through the gateway holds one upstream socket.
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, pipelining: 1 });
  // Each process (each worker too) starts its own SDK; nothing of it loads when tracing is off.
  const tracing = dryRun ? undefined : await tracingFromEnv(env);
  if (tracing) log.info("OpenTelemetry tracing on (OTLP/HTTP)");
  return {
    settings,
    log,
    store,
    secrets,
    dispatcher,
    systemRoutes,
    metrics,
    audit,
    mcpMetrics,
    tracing,
    now: () => Date.now(),
    env,
  };
}
