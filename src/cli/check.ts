/**
 * The steps `start` takes before it serves, shared with `validate` so that `validate` reports
 * whatever `start` would refuse — they run the same functions, not two copies of a list:
 *
 *   prepareProject   the project files (`loadProject`) and the settings read before listening
 *   assembleGateway  the gateway services (every `TOLLGATE_*` setting) and the gateway itself:
 *                    each policy and handler factory runs once, as at start-up
 *
 * `start` listens between the two (with `--port 0` the public URL needs the port). `validate`
 * runs both back to back as a dry run: a memory store, no file written, no tracing exporter,
 * and nothing served. A check added anywhere in these steps applies to both commands.
 */
import path from "node:path";
import { Writable } from "node:stream";
import { createGateway, type Gateway } from "../gateway.js";
import { createLogger, type Logger } from "../log.js";
import type { GatewayServices } from "../pipeline/services.js";
import { loadProject } from "../project/load.js";
import type { ConfigIssue, Project } from "../project/types.js";
import { SystemRoutes } from "../routing/system-routes.js";
import type { EdgeLimits } from "../server/limits.js";
import { MemoryStore } from "../store/memory.js";
import { edgeLimitsFromEnv } from "./edge-env.js";
import { metricsExposureFromEnv } from "./observability.js";
import { printWarnings, reportFailure } from "./output.js";
import { buildServices, EnvConfigError, logLevelFromEnv, registerHealthRoutes, type Env } from "./services.js";

const DEFAULT_SHUTDOWN_MS = 10_000;

/** A loaded project with the settings `start` needs before it listens. */
export interface PreparedProject {
  projectDir: string;
  project: Project;
  logLevel: string;
  limits: EdgeLimits;
  /** How long a shutdown waits for in-flight requests (`TOLLGATE_SHUTDOWN_TIMEOUT_MS`). */
  shutdownMs: number;
}

/** `TOLLGATE_SHUTDOWN_TIMEOUT_MS`: a whole number of milliseconds, default 10 000. */
export function shutdownTimeoutFromEnv(env: Env): number {
  const raw = env.TOLLGATE_SHUTDOWN_TIMEOUT_MS?.trim();
  if (!raw) return DEFAULT_SHUTDOWN_MS;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new EnvConfigError(`TOLLGATE_SHUTDOWN_TIMEOUT_MS must be a whole number of milliseconds, got "${raw}"`);
  return n;
}

/**
 * Step 1: loads the project and reads the settings used before listening.
 *
 * @throws ProjectConfigError (the project's problems) or EnvConfigError (a bad setting).
 */
export async function prepareProject(projectDir: string, env: Env): Promise<PreparedProject> {
  const dir = path.resolve(projectDir);
  const project = await loadProject(dir, { env });
  return {
    projectDir: dir,
    project,
    logLevel: logLevelFromEnv(project.env),
    limits: edgeLimitsFromEnv(project.env),
    shutdownMs: shutdownTimeoutFromEnv(project.env),
  };
}

/** Services for one gateway build: shared store/secrets/dispatcher, fresh endpoint table and env. */
export function servicesFor(base: GatewayServices, project: Project): GatewayServices {
  const systemRoutes = new SystemRoutes();
  registerHealthRoutes(systemRoutes, base.store, base.metrics, metricsExposureFromEnv(base.env).token);
  return { ...base, env: project.env, systemRoutes };
}

/** Closes what {@link assembleGateway}'s services opened (audit sinks, tracing, connections, store). */
export async function closeServices(services: GatewayServices, log: Logger): Promise<void> {
  await services.audit?.close();
  await services.tracing?.shutdown().catch((err: unknown) => log.warn({ err }, "flushing traces failed"));
  await services.dispatcher.close().catch(() => {});
  await services.store.close().catch((err) => log.warn({ err }, "closing the store failed"));
}

export interface AssembleOptions {
  host: string;
  /** The port served on (the default public URL contains it). */
  port: number;
  log: Logger;
  /** `validate`: build without side effects outside the process (see `buildServices`). */
  dryRun?: boolean;
}

/**
 * Step 2: builds the gateway-wide services from the environment, then the gateway. On failure
 * whatever was opened is closed again before the error is rethrown.
 */
export async function assembleGateway(
  prepared: PreparedProject,
  opts: AssembleOptions,
): Promise<{ services: GatewayServices; gateway: Gateway }> {
  const { project, projectDir } = prepared;
  const services = await buildServices({
    env: project.env,
    projectDir,
    host: opts.host,
    port: opts.port,
    log: opts.log,
    ...(opts.dryRun ? { dryRun: true, store: new MemoryStore() } : {}),
  });
  try {
    return { services, gateway: await createGateway(project, servicesFor(services, project)) };
  } catch (err) {
    await closeServices(services, opts.log);
    throw err;
  }
}

/**
 * A logger for a dry run: nothing goes to stdout; warnings the build logs (a policy without an
 * audience, plain http to an identity provider…) are handed to `onWarning` as plain text.
 */
function warningCollector(onWarning: (line: string) => void): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line) continue;
        try {
          const entry = JSON.parse(line) as { msg?: unknown; policy?: unknown };
          if (typeof entry.msg !== "string") continue;
          onWarning(typeof entry.policy === "string" ? `policy "${entry.policy}": ${entry.msg}` : entry.msg);
        } catch {
          // not a log line
        }
      }
      done();
    },
  });
  return createLogger({ level: "warn", destination: sink });
}

export interface ValidateOptions {
  projectDir: string;
  env: Env;
  host: string;
  port: number;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

/**
 * `tollgate validate`: the checks of `start` (both steps above), as a dry run. Prints every
 * problem (exit 1) or `OK: …` after the project's warnings (exit 0).
 */
export async function validateProject(opts: ValidateOptions): Promise<number> {
  let prepared: PreparedProject;
  try {
    prepared = await prepareProject(opts.projectDir, opts.env);
  } catch (err) {
    return reportFailure(err, opts.stderr);
  }
  const { project } = prepared;
  const warnings: ConfigIssue[] = [...project.warnings];
  const buildWarnings: string[] = [];
  const log = warningCollector((w) => buildWarnings.push(w));
  try {
    const { services, gateway } = await assembleGateway(prepared, { host: opts.host, port: opts.port, log, dryRun: true });
    await gateway.close();
    await closeServices(services, log);
  } catch (err) {
    printWarnings(warnings, opts.stderr);
    return reportFailure(err, opts.stderr);
  }
  printWarnings(warnings, opts.stderr);
  for (const w of [...new Set(buildWarnings)]) opts.stderr(`warning: ${w}`);
  opts.stdout(`OK: ${project.routes.length} route(s), ${project.policies.size} policy(ies) in ${prepared.projectDir}`);
  return 0;
}
