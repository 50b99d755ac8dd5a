/**
 * `tollgate start --workers N`: N worker processes (`node:cluster`) behind one listening
 * socket. The primary only supervises: it checks the configuration once, forks the workers,
 * prints one start line, replaces a worker that dies (with a growing delay, so a crash loop does
 * not spin), answers the workers' requests for metrics aggregated over all of them, and on
 * SIGTERM/SIGINT lets every worker drain before it exits. Each worker is a complete gateway
 * (`runServer`); everything workers must share lives in the store. See docs/performance.md
 * ("Workers") for what is kept per process and why that is correct.
 *
 * @see https://nodejs.org/api/cluster.html
 */
import cluster, { type Worker } from "node:cluster";
import { AggregatorRegistry } from "prom-client";
import { createLogger, flushLog, silentLogger, type Logger } from "../log.js";
import type { GatewayMetrics } from "../metrics.js";
import { prepareProject, type PreparedProject } from "./check.js";
import { printWarnings, reportFailure } from "./output.js";
import { runServer, type RunOptions } from "./run.js";
import { devKeyWarning, modeFromEnv, resolveKeyRing } from "./services.js";

/** A running server as the CLI drives it (single process or cluster primary). */
export interface Supervised {
  url: string;
  shutdown(reason: string): Promise<number>;
  done: Promise<number>;
}

const STARTED = "tollgate:started";
const METRICS = "tollgate:metrics";
/** A worker that served this long before it died counts as healthy: its replacement starts at once. */
const HEALTHY_MS = 30_000;
const MAX_BACKOFF_MS = 30_000;

/** Delay before the next replacement after `failures` quick deaths in a row (0, 0.5 s, 1 s, … 30 s). */
export function restartDelay(failures: number): number {
  return failures <= 1 ? 0 : Math.min(MAX_BACKOFF_MS, 250 * 2 ** (failures - 1));
}

/** True when the store spec keeps its data inside one process. */
export function isProcessLocalStore(spec: string | undefined): boolean {
  const s = (spec ?? "").trim();
  return s === "memory" || s === "memory:";
}

/**
 * Runs one worker: a full gateway whose start line and metrics requests go to the primary. The
 * worker ends itself when the primary goes away (its IPC channel closes).
 */
export async function runWorker(opts: RunOptions): Promise<Supervised | number> {
  const send = (msg: Record<string, unknown>) => {
    if (process.connected) process.send!(msg);
  };
  let seq = 0;
  const waiting = new Map<number, (text: string | Error) => void>();
  process.on("message", (msg: { type?: string; id?: number; text?: string; error?: string }) => {
    if (msg?.type !== METRICS || msg.id === undefined) return;
    const resolve = waiting.get(msg.id);
    waiting.delete(msg.id);
    resolve?.(msg.error ? new Error(msg.error) : (msg.text ?? ""));
  });
  const aggregate = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const id = ++seq;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error("the primary did not answer the metrics request"));
      }, 10_000);
      waiting.set(id, (r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      });
      send({ type: METRICS, id });
    });
  const running = await runServer({
    ...opts,
    workerId: cluster.worker!.id,
    startWarnings: false,
    stdout: (line) => send({ type: STARTED, line }),
    onMetrics: (m: GatewayMetrics) => {
      // Answers the primary's `clusterMetrics()` with this worker's registry.
      new AggregatorRegistry();
      AggregatorRegistry.setRegistries([m.registry]);
      m.aggregate = aggregate;
    },
  });
  if (typeof running === "number") return running;
  process.once("disconnect", () => void running.shutdown("primary exited"));
  return running;
}

interface PrimaryOptions extends RunOptions {
  workers: number;
  /** The worker count was asked for (`--workers`), not the default. */
  explicit: boolean;
}

/**
 * Starts the primary. Returns an exit code when the configuration is unusable, and falls back to
 * a single process (with a notice) when the store cannot be shared and N was not asked for.
 */
export async function runPrimary(opts: PrimaryOptions): Promise<Supervised | number> {
  let log: Logger;
  let prepared: PreparedProject;
  try {
    prepared = await prepareProject(opts.projectDir, opts.env);
    const env = prepared.project.env;
    if (isProcessLocalStore(env.TOLLGATE_STORE)) {
      const why = `TOLLGATE_STORE=${env.TOLLGATE_STORE!.trim()} keeps sessions, flow state and counters inside one process`;
      if (opts.explicit) {
        opts.stderr(`--workers ${opts.workers}: ${why}; use a sqlite: or postgres:// store, or --workers 1.`);
        return 1;
      }
      opts.stderr(`Running 1 worker instead of ${opts.workers}: ${why}.`);
      return runServer(opts);
    }
    log = createLogger({ level: prepared.logLevel, sharedOutput: true }).child({ worker: "primary" });
    // Creates the development key once, before workers race to create it (and fails early in
    // production without a key).
    resolveKeyRing(env, prepared.projectDir, modeFromEnv(env), silentLogger);
  } catch (err) {
    return reportFailure(err, opts.stderr);
  }
  // The workers stay quiet about these: printed once here, not once per worker.
  printWarnings(prepared.project.warnings, opts.stderr);
  if (!prepared.project.env.TOLLGATE_ENCRYPTION_KEY?.trim()) opts.stderr(devKeyWarning(prepared.projectDir));
  return supervise(opts, log);
}

function supervise(opts: PrimaryOptions, log: Logger): Promise<Supervised | number> {
  // The workers write to this process's stdout and stderr themselves: each log write holds whole
  // lines and at most PIPE_BUF bytes (`sharedOutput`), so lines of different processes never
  // interleave (docs/performance.md, "Workers").
  cluster.setupPrimary({ stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const metrics = new AggregatorRegistry();
  const started = new Map<number, number>(); // worker id → time it reported ready
  let shuttingDown: Promise<number> | undefined;
  let failures = 0;
  let exit!: (code: number) => void;
  const done = new Promise<number>((resolve) => (exit = resolve));
  let firstLine: string | undefined;

  const onMessage = (worker: Worker, msg: { type?: string; id?: number; line?: string }) => {
    if (msg?.type === STARTED) {
      firstLine ??= msg.line;
      started.set(worker.id, Date.now());
    } else if (msg?.type === METRICS) {
      metrics.clusterMetrics().then(
        (text) => worker.isConnected() && worker.send({ type: METRICS, id: msg.id, text }),
        (err: Error) => worker.isConnected() && worker.send({ type: METRICS, id: msg.id, error: err.message }),
      );
    }
  };
  cluster.on("message", onMessage);

  /** Forks a worker and resolves true once it serves, false if it exits first. */
  const fork = (): Promise<boolean> =>
    new Promise((resolve) => {
      const w = cluster.fork();
      const onStarted = (msg: { type?: string }) => {
        if (msg?.type !== STARTED) return;
        w.off("exit", onEarlyExit);
        resolve(true);
      };
      const onEarlyExit = () => {
        w.off("message", onStarted);
        resolve(false);
      };
      w.on("message", onStarted);
      w.once("exit", onEarlyExit);
    });

  const replace = (worker: Worker, code: number | null, signal: string | null) => {
    const lived = Date.now() - (started.get(worker.id) ?? Date.now());
    started.delete(worker.id);
    if (shuttingDown) return;
    failures = lived >= HEALTHY_MS ? 1 : failures + 1;
    const delay = restartDelay(failures);
    log.error({ exited: worker.id, code, signal, restartInMs: delay }, "worker exited; starting a replacement");
    const timer = setTimeout(() => {
      if (shuttingDown) return;
      void fork().then((ok) => ok && log.info({ workers: Object.keys(cluster.workers ?? {}).length }, "replacement worker serving"));
    }, delay);
    timer.unref();
  };

  const shutdown = (reason: string): Promise<number> => {
    shuttingDown ??= (async () => {
      log.info({ reason }, "shutting down");
      const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead());
      // Each worker drains its own connections (TOLLGATE_SHUTDOWN_TIMEOUT_MS) and exits.
      await Promise.all(
        alive.map(
          (w) =>
            new Promise<void>((resolve) => {
              w.once("exit", () => resolve());
              w.process.kill("SIGTERM");
            }),
        ),
      );
      cluster.off("message", onMessage);
      // Each worker wrote its last lines before it exited: this one comes after them.
      log.info("stopped");
      await flushLog(log);
      exit(0);
      return 0;
    })();
    return shuttingDown;
  };

  return (async () => {
    // The first worker alone, so configuration errors print once and the store is set up
    // (migrations) by one process; the others then start side by side.
    const ok = (await fork()) && (await Promise.all(Array.from({ length: opts.workers - 1 }, fork))).every(Boolean);
    if (!ok) {
      await shutdown("a worker failed to start");
      return 1;
    }
    cluster.on("exit", replace);
    const line = firstLine ?? "Tollgate serving";
    opts.stdout(`${line} with ${opts.workers} workers`);
    const url = /at (\S+)/.exec(line)?.[1] ?? "";
    return { url, shutdown, done };
  })();
}

/** Default number of workers: one per core the process may use. */
export { availableParallelism as defaultWorkers } from "node:os";
