/**
 * The `tollgate` command line: `start`, `dev`, `validate`, `keys`, `connections`.
 * This folder is the only place that reads the process environment; everything below gets it
 * as a parameter. Heavy modules load lazily so `keys generate` and `--help` answer at once.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { generateKey } from "../store/crypto.js";
import { reportFailure } from "./output.js";
import type { Env } from "./services.js";

const USAGE = `Usage: tollgate <command> [options]

Commands:
  start                 serve the project
  dev                   serve the project and reload it when its files change
  validate              check the project and list every problem (exit 1 if any)
  keys generate         print a new encryption key (base64 of 32 random bytes)
  keys rotate           re-encrypt stored secrets with the newest key of TOLLGATE_ENCRYPTION_KEY
  connections [--json]  list stored connections (no secrets)
  audit [--user SUB] [--upstream ID] [--tool NAME] [--outcome O] [--event E] [--limit N] [--json]
                        recent audit events kept by the store sink (TOLLGATE_AUDIT_SINK=store)

Options:
  --project DIR   project folder (default: current folder)
  --port N        port to listen on (default: $PORT or 9000)
  --host H        address to listen on (default: 127.0.0.1)
  --workers N     start: worker processes behind the one socket (default: $TOLLGATE_WORKERS,
                  else one per available core; dev: 1)
  -h, --help      show this help

Environment: TOLLGATE_PUBLIC_URL, TOLLGATE_STORE, TOLLGATE_ENCRYPTION_KEY, TOLLGATE_DEV_LOGIN,
TOLLGATE_ADMIN_SUBJECTS, TOLLGATE_ADMIN_CLAIM, TOLLGATE_ALLOWED_UPSTREAM_HOSTS,
TOLLGATE_BASE_PATH, TOLLGATE_LOG_LEVEL, TOLLGATE_SHUTDOWN_TIMEOUT_MS, TOLLGATE_MODE, TOLLGATE_WORKERS, PORT.
See docs/cli.md.`;

/** Output sinks (tests may replace them). */
export interface Io {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

const defaultIo: Io = {
  stdout: (l) => process.stdout.write(`${l}\n`),
  stderr: (l) => process.stderr.write(`${l}\n`),
};

function parsePort(v: string | undefined, fallback: number): number {
  if (v === undefined || v.trim() === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`invalid port "${v}"`);
  return n;
}

function parseWorkers(v: string | undefined, fallback: number): number {
  if (v === undefined || v.trim() === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new UsageError(`invalid worker count "${v}" (a whole number from 1)`);
  return n;
}

class UsageError extends Error {}

/**
 * Runs the CLI. Returns the exit code, or `undefined` for server commands (the process then
 * lives until a signal ends it and sets its own exit code).
 */
export async function main(argv: string[], env: Env, io: Io = defaultIo): Promise<number | undefined> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        project: { type: "string", short: "p" },
        port: { type: "string" },
        host: { type: "string" },
        workers: { type: "string" },
        json: { type: "boolean" },
        user: { type: "string" },
        upstream: { type: "string" },
        tool: { type: "string" },
        outcome: { type: "string" },
        event: { type: "string" },
        limit: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    io.stderr(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, sub] = positionals;
  if (values.help || !command || command === "help") {
    io.stdout(USAGE);
    return command || values.help ? 0 : 2;
  }
  const projectDir = path.resolve(values.project ?? ".");
  try {
    switch (command) {
      case "validate": {
        const { loadProject } = await import("../project/load.js");
        const project = await loadProject(projectDir, { env });
        const { printWarnings } = await import("./output.js");
        printWarnings(project.warnings, io.stderr);
        io.stdout(`OK: ${project.routes.length} route(s), ${project.policies.size} policy(ies) in ${projectDir}`);
        return 0;
      }
      case "start":
      case "dev": {
        const host = values.host ?? "127.0.0.1";
        const port = parsePort(values.port, parsePort(env.PORT, 9000));
        const run = { projectDir, host, port, env, watch: command === "dev", ...io };
        const cluster = (await import("node:cluster")).default;
        const { defaultWorkers, runPrimary, runWorker } = await import("./cluster.js");
        const asked = values.workers ?? env.TOLLGATE_WORKERS;
        const workers = parseWorkers(asked, command === "dev" ? 1 : defaultWorkers());
        const running = cluster.isWorker
          ? await runWorker(run)
          : workers > 1
            ? await runPrimary({ ...run, workers, explicit: asked !== undefined && asked.trim() !== "" })
            : await (await import("./run.js")).runServer(run);
        if (typeof running === "number") return running;
        const onSignal = (signal: NodeJS.Signals) => void running.shutdown(signal);
        process.once("SIGTERM", onSignal);
        process.once("SIGINT", onSignal);
        const code = await running.done;
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
        return code;
      }
      case "keys": {
        if (sub === "generate") {
          io.stdout(generateKey());
          return 0;
        }
        if (sub === "rotate") return await (await import("./admin.js")).keysRotate({ projectDir, env, ...io });
        throw new UsageError(`unknown keys command "${sub ?? ""}" (use: keys generate | keys rotate)`);
      }
      case "connections": {
        if (sub !== undefined && sub !== "list") throw new UsageError(`unknown connections command "${sub}" (use: connections [list])`);
        return await (await import("./admin.js")).listConnections({ projectDir, env, json: values.json === true, ...io });
      }
      case "audit": {
        const limit = values.limit === undefined ? 100 : Number(values.limit);
        if (!Number.isInteger(limit) || limit <= 0) throw new UsageError(`invalid --limit "${values.limit}"`);
        const query = { subjectId: values.user, upstreamServerId: values.upstream, capabilityName: values.tool, outcome: values.outcome, event: values.event, limit };
        return await (await import("./admin.js")).listAudit({ projectDir, env, json: values.json === true, query, ...io });
      }
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`${err.message}\n\n${USAGE}`);
      return 2;
    }
    return reportFailure(err, io.stderr);
  }
}
