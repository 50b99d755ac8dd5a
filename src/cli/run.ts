/**
 * `tollgate start` and `tollgate dev`: serve a project over HTTP, reload it on change (`dev`),
 * and shut down gracefully on SIGTERM/SIGINT (stop accepting, drain in-flight requests up to a
 * timeout, close the store).
 */
import fs from "node:fs";
import path from "node:path";
import type http from "node:http";
import type { AddressInfo } from "node:net";
import { createGateway, type Gateway } from "../gateway.js";
import { createLogger, flushLog, type Logger } from "../log.js";
import type { GatewayMetrics } from "../metrics.js";
import type { GatewayServices } from "../pipeline/services.js";
import { loadProject } from "../project/load.js";
import { ProjectConfigError, type Project } from "../project/types.js";
import { createNodeServer, type NodeServerOptions } from "../server/node.js";
import { formatIssue, printWarnings, reportFailure } from "./output.js";
import { devKeyWarning, type Env } from "./services.js";
import { metricsExposureFromEnv } from "./observability.js";
import { startMetricsServer, type MetricsServer } from "../server/metrics.js";
import { assembleGateway, closeServices, prepareProject, servicesFor, type PreparedProject } from "./check.js";

export interface RunOptions {
  projectDir: string;
  host: string;
  port: number;
  /** The process environment. */
  env: Env;
  /** Reload on changes of zuplo.jsonc, config/, modules/, .env. */
  watch: boolean;
  /** Where the start line and plain-text errors go. */
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Set in a cluster worker: tags its log lines (`worker`). */
  workerId?: number;
  /** Called with the process's metrics once they exist (a cluster worker aggregates through them). */
  onMetrics?: (metrics: GatewayMetrics) => void;
  /**
   * Print the start-up warnings (the project's, the development key's). False in cluster
   * workers: the primary prints them once for all.
   */
  startWarnings?: boolean;
}

/** A running server: resolves `done` with the exit code once it has shut down. */
export interface RunningServer {
  url: string;
  server: http.Server;
  /** Starts a graceful shutdown (idempotent). */
  shutdown(reason: string): Promise<number>;
  done: Promise<number>;
}

/** Answers 503 while the gateway is being built (the socket listens first to learn its port). */
function startingGateway(): Gateway {
  return {
    fetch: async () =>
      new Response(JSON.stringify({ status: "starting" }), {
        status: 503,
        headers: { "content-type": "application/json", "retry-after": "1" },
      }),
    get project(): Project {
      throw new Error("gateway is starting");
    },
    get services(): GatewayServices {
      throw new Error("gateway is starting");
    },
    close: async () => {},
  };
}

/**
 * Loads the project, listens, builds the gateway and serves it until a signal arrives.
 * Configuration problems are printed (one per line) and yield exit code 1.
 */
export async function runServer(opts: RunOptions): Promise<RunningServer | number> {
  let prepared: PreparedProject;
  let log: Logger;
  try {
    // Everything checked here and in assembleGateway below is what `validate` checks too.
    prepared = await prepareProject(opts.projectDir, opts.env);
    // A cluster worker shares stdout with the other workers and the primary: writes of whole
    // lines up to PIPE_BUF, which the kernel never interleaves.
    log = createLogger({ level: prepared.logLevel, sharedOutput: opts.workerId !== undefined });
    if (opts.workerId !== undefined) log = log.child({ worker: opts.workerId });
  } catch (err) {
    return reportFailure(err, opts.stderr);
  }
  const { project, projectDir, limits, shutdownMs } = prepared;
  const warn = opts.startWarnings !== false;
  if (warn) printWarnings(project.warnings, opts.stderr);

  let current: Gateway = startingGateway();
  const inFlight = new Map<Gateway, number>();
  const retired = new Set<Gateway>();
  const serverOpts: NodeServerOptions = { maxBodyBytes: 4 * 1024 * 1024, gateway: () => current, limits };
  const server = createNodeServer(serverOpts);
  let drained: (() => void) | undefined;
  const closeRetired = async (g: Gateway) => {
    retired.delete(g);
    inFlight.delete(g);
    await g.close().catch((err) => log.warn({ err }, "closing the previous gateway failed"));
  };
  server.on("request", (_req: http.IncomingMessage, res: http.ServerResponse) => {
    const g = current; // the same gateway createNodeServer's handler picked for this request
    inFlight.set(g, (inFlight.get(g) ?? 0) + 1);
    res.once("close", () => {
      const n = (inFlight.get(g) ?? 1) - 1;
      inFlight.set(g, n);
      if (n === 0 && retired.has(g)) void closeRetired(g);
      if (drained && [...inFlight.values()].every((v) => v === 0)) drained();
    });
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port, opts.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    return reportFailure(err, opts.stderr);
  }
  const port = (server.address() as AddressInfo).port;

  let base: GatewayServices;
  let metricsServer: MetricsServer | undefined;
  try {
    const assembled = await assembleGateway(prepared, { host: opts.host, port, log });
    base = assembled.services;
    if (warn && !project.env.TOLLGATE_ENCRYPTION_KEY?.trim()) opts.stderr(devKeyWarning(projectDir));
    serverOpts.maxBodyBytes = base.settings.maxBodyBytes;
    if (base.metrics) opts.onMetrics?.(base.metrics);
    current = assembled.gateway;
    const exposure = metricsExposureFromEnv(project.env).listener;
    if (exposure && base.metrics) {
      metricsServer = await startMetricsServer(base.metrics, exposure.host, exposure.port);
      opts.stdout(`Metrics at ${metricsServer.url}/metrics`);
    }
  } catch (err) {
    server.close();
    return reportFailure(err, opts.stderr);
  }
  const services = base;
  // Expired flow state, codes and counters are deleted in the background, once a minute.
  const sweeper = setInterval(() => {
    services.store.sweep().catch((err) => log.warn({ err }, "store sweep failed"));
  }, 60_000);
  sweeper.unref();

  const swap = async (): Promise<void> => {
    let next: Project;
    try {
      next = await loadProject(projectDir, { env: opts.env });
      printWarnings(next.warnings, opts.stderr);
    } catch (err) {
      if (err instanceof ProjectConfigError) {
        log.error({ issues: err.issues.map(formatIssue) }, "configuration change rejected; still serving the previous version");
        for (const i of err.issues) opts.stderr(formatIssue(i));
      } else log.error({ err }, "reload failed; still serving the previous version");
      return;
    }
    let gateway: Gateway;
    try {
      gateway = await createGateway(next, servicesFor(services, next));
    } catch (err) {
      log.error({ err }, "building the new gateway failed; still serving the previous version");
      return;
    }
    const old = current;
    current = gateway;
    retired.add(old);
    if ((inFlight.get(old) ?? 0) === 0) await closeRetired(old);
    log.info({ routes: next.routes.length, policies: next.policies.size }, "project reloaded");
  };
  const stopWatching = opts.watch ? watchProject(projectDir, swap, log) : () => {};

  let exit: ((code: number) => void) | undefined;
  const done = new Promise<number>((resolve) => (exit = resolve));
  let shuttingDown: Promise<number> | undefined;
  const shutdown = (reason: string): Promise<number> => {
    shuttingDown ??= (async () => {
      log.info({ reason }, "shutting down");
      stopWatching();
      clearInterval(sweeper);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const busy = () => [...inFlight.values()].some((v) => v > 0);
      if (busy()) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, shutdownMs);
          timer.unref();
          drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      if (busy()) log.warn("shutdown timeout reached; closing remaining connections");
      server.closeAllConnections();
      await closed;
      for (const g of new Set([current, ...retired])) await g.close().catch(() => {});
      await metricsServer?.close();
      await closeServices(services, log);
      log.info("stopped");
      await flushLog(log);
      exit!(0);
      return 0;
    })();
    return shuttingDown;
  };

  const url = services.settings.publicUrl;
  const listenUrl = `http://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${port}`;
  opts.stdout(
    `Tollgate ${opts.watch ? "dev " : ""}serving ${project.routes.length} route(s) at ${url}` +
      (url === listenUrl ? "" : ` (listening on ${listenUrl})`),
  );
  return { url, server, shutdown, done };
}

/** Watches the project's files; calls `onChange` (debounced, one at a time) after edits. */
function watchProject(dir: string, onChange: () => Promise<void>, log: Logger): () => void {
  const watchers: fs.FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  const fire = () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    void onChange().finally(() => {
      running = false;
      if (again) {
        again = false;
        fire();
      }
    });
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(fire, 150);
  };
  const rootFiles = new Set(["zuplo.jsonc", ".env"]);
  const add = (target: string, recursive: boolean, filter?: (name: string | null) => boolean) => {
    try {
      const w = fs.watch(target, { recursive, persistent: true }, (_event, name) => {
        if (!filter || filter(name)) schedule();
      });
      w.on("error", (err) => log.warn({ err, target }, "file watcher failed"));
      watchers.push(w);
    } catch (err) {
      log.warn({ err, target }, "cannot watch");
    }
  };
  const watched = new Set<string>();
  const watchSubfolders = () => {
    for (const sub of ["config", "modules"]) {
      const p = path.join(dir, sub);
      if (!watched.has(sub) && fs.existsSync(p)) {
        watched.add(sub);
        add(p, true);
      }
    }
  };
  // The root folder catches the two root files and config/ or modules/ being created later.
  add(dir, false, (name) => {
    if (name === "config" || name === "modules") watchSubfolders();
    return name === null || rootFiles.has(name) || name === "config" || name === "modules";
  });
  watchSubfolders();
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
