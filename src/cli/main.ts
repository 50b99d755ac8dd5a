/**
 * The `tollgate` command line: `start`, `dev`, `validate`, `keys`, `connections`, `audit`.
 * This folder is the only place that reads the process environment; everything below gets it
 * as a parameter. Heavy modules load lazily so `keys generate` and `--help` answer at once.
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { generateKey } from "../store/crypto.js";
import { reportFailure } from "./output.js";
import type { Env } from "./services.js";

const ENVIRONMENT = `Environment: TOLLGATE_PUBLIC_URL, TOLLGATE_STORE, TOLLGATE_ENCRYPTION_KEY, TOLLGATE_DEV_LOGIN,
TOLLGATE_ADMIN_SUBJECTS, TOLLGATE_ADMIN_CLAIM, TOLLGATE_ALLOWED_UPSTREAM_HOSTS,
TOLLGATE_BASE_PATH, TOLLGATE_LOG_LEVEL, TOLLGATE_AUDIT, TOLLGATE_SHUTDOWN_TIMEOUT_MS, TOLLGATE_MODE,
TOLLGATE_WORKERS, PORT.
See docs/cli.md.`;

const PROJECT = "  -p, --project DIR   project folder (default: current folder)";
const LISTEN = `  --port N            port to listen on (default: $PORT or 9000; 0 picks a free one)
  --host H            address to listen on (default: 127.0.0.1)`;

/** Each command's usage, printed by `tollgate <command> --help` and `tollgate help <command>`. */
const COMMANDS: Record<string, { summary: string; usage: string }> = {
  start: {
    summary: "start                 serve the project",
    usage: `Usage: tollgate start [options]

Serves the project until SIGTERM or SIGINT, then drains in-flight requests.

Options:
${PROJECT}
${LISTEN}
  --workers N         worker processes behind the one socket (default: $TOLLGATE_WORKERS,
                      else one per available core)`,
  },
  dev: {
    summary: "dev                   serve the project and reload it when its files change",
    usage: `Usage: tollgate dev [options]

Like start, and rebuilds the gateway when zuplo.jsonc, .env, config/ or modules/ change.
An invalid edit is reported and the previous version keeps serving.

Options:
${PROJECT}
${LISTEN}
  --workers N         worker processes (default: 1)`,
  },
  validate: {
    summary: "validate              check the project as start would and list every problem (exit 1 if any)",
    usage: `Usage: tollgate validate [options]

Runs every check of start without serving: the project files, the TOLLGATE_* settings and
the build of each policy and handler (nothing is written; an OpenID issuer's discovery
document is fetched, as at start). Prints every problem and exits 1, or prints OK and exits 0.

Options:
${PROJECT}
  --port N, --host H  as for start (they make the default public URL)`,
  },
  keys: {
    summary: `keys generate         print a new encryption key (base64 of 32 random bytes)
  keys rotate           re-encrypt stored secrets with the newest key of TOLLGATE_ENCRYPTION_KEY`,
    usage: `Usage: tollgate keys generate
       tollgate keys rotate [--project DIR]

keys generate   prints a new encryption key for TOLLGATE_ENCRYPTION_KEY
keys rotate     re-encrypts every stored secret with the newest key of the ring
                (TOLLGATE_ENCRYPTION_KEY="old:…,new:…"); safe to run while gateways serve

Options:
${PROJECT}`,
  },
  connections: {
    summary: "connections [--json]  list stored connections (no secrets)",
    usage: `Usage: tollgate connections [list] [--json] [--project DIR]

Lists the project's stored upstream connections (never their tokens). Times are ISO 8601, UTC.

Options:
${PROJECT}
  --json              one JSON array instead of one line per connection`,
  },
  audit: {
    summary: `audit [filters] [--json]
                        recent audit events kept by the store sink (TOLLGATE_AUDIT_SINK=store)`,
    usage: `Usage: tollgate audit [--user SUB] [--upstream ID] [--tool NAME] [--outcome O] [--event E]
                      [--limit N] [--json] [--project DIR]

Lists recent audit events of the store sink (TOLLGATE_AUDIT_SINK=store), newest first.
Every given filter must match exactly. Times are ISO 8601, UTC.

Options:
${PROJECT}
  --user SUB          the user's subject
  --upstream ID       the upstream server id
  --tool NAME         the tool (capability) name
  --outcome O         e.g. success, denied, error
  --event E           e.g. mcp_capability_completed
  --limit N           most events shown (default 100)
  --json              one JSON array`,
  },
};

const USAGE = `Usage: tollgate <command> [options]

Commands:
${Object.values(COMMANDS)
  .map((c) => `  ${c.summary}`)
  .join("\n")}

Options:
${PROJECT}
${LISTEN}
  --workers N         start: worker processes (default: $TOLLGATE_WORKERS, else one per core)
  -h, --help          show this help; \`tollgate <command> --help\` shows one command's
  -v, --version       print the version

${ENVIRONMENT}`;

/** The usage of one command, or undefined for an unknown name. */
function usageOf(command: string): string | undefined {
  return Object.hasOwn(COMMANDS, command) ? COMMANDS[command]!.usage : undefined;
}

/** The package's version (package.json, which every install and checkout carries). */
function version(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
  return pkg.version ?? "unknown";
}

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
        version: { type: "boolean", short: "v" },
      },
    });
  } catch (err) {
    io.stderr(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, sub] = positionals;
  if (values.version || command === "version") {
    io.stdout(`tollgate ${version()}`);
    return 0;
  }
  if (command === "help" || values.help || !command) {
    // `tollgate`, `tollgate --help`, `tollgate help [command]`, `tollgate <command> --help`
    const asked = command === "help" ? sub : command;
    if (asked === undefined) {
      io.stdout(USAGE);
      return command || values.help ? 0 : 2;
    }
    const topic = usageOf(asked);
    if (!topic) {
      io.stderr(`unknown command "${asked}"\n\n${USAGE}`);
      return 2;
    }
    io.stdout(topic);
    return 0;
  }
  const projectDir = path.resolve(values.project ?? ".");
  try {
    switch (command) {
      case "validate": {
        const host = values.host ?? "127.0.0.1";
        const port = parsePort(values.port, parsePort(env.PORT, 9000));
        return await (await import("./check.js")).validateProject({ projectDir, env, host, port, ...io });
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
        // Listening for signals before starting: one that arrives while the server starts (or
        // right after its start line) shuts it down gracefully instead of killing the process.
        let running: Awaited<ReturnType<typeof runWorker>> | undefined;
        let early: NodeJS.Signals | undefined;
        const onSignal = (signal: NodeJS.Signals) => {
          if (running !== undefined && typeof running !== "number") void running.shutdown(signal);
          else early = signal;
        };
        process.once("SIGTERM", onSignal);
        process.once("SIGINT", onSignal);
        try {
          running = cluster.isWorker
            ? await runWorker(run)
            : workers > 1
              ? await runPrimary({ ...run, workers, explicit: asked !== undefined && asked.trim() !== "" })
              : await (await import("./run.js")).runServer(run);
          if (typeof running === "number") return running;
          if (early) void running.shutdown(early);
          return await running.done;
        } finally {
          process.off("SIGTERM", onSignal);
          process.off("SIGINT", onSignal);
        }
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
      io.stderr(`${err.message}\n\n${usageOf(command) ?? USAGE}`);
      return 2;
    }
    return reportFailure(err, io.stderr);
  }
}
