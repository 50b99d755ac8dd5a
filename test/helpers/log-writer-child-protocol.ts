/**
 * What the log writer tests (`src/log-writer.test.ts`) and their logging child process
 * (`log-writer-child.ts`) agree on: the child's configuration and how it travels on the command
 * line, the lines the child logs, and what it reports on stderr. Kept apart from the child
 * because importing the child runs it.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The child process's script. */
export const LOG_WRITER_CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), "log-writer-child.ts");

export interface ChildConfig {
  /** Goes into every line, to tell the lines of several children apart. */
  tag: string;
  /** How many lines to log. */
  lines: number;
  /** The lengths of `pad`, cycled through. */
  sizes: number[];
  /** Lines written between two turns of the event loop (default: all at once). */
  burst?: number;
  /**
   * `flush`: await flushLog, then leave the process to end by itself; `exit`: `process.exit(0)`
   * right after the last line; `natural`: nothing, the process ends.
   */
  end: "flush" | "exit" | "natural";
  /** The logger's bound on waiting bytes. */
  maxQueuedBytes?: number;
  /**
   * Create `process.stdout` first, which makes a piped stdout non-blocking, as the CLI does when
   * it prints to it.
   */
  touchStdout?: boolean;
  /** The logger's `sharedOutput` (default true: the children share one pipe). */
  sharedOutput?: boolean;
  /**
   * Log through `writeFlat` (the access log's and audit trail's way: lines encoded straight into
   * the writer's buffer) instead of pino. The lines are the same.
   */
  flat?: boolean;
}

/**
 * A line as it comes out of the child: `{…, "tag", "i", "pad", "msg":"line"}`, `i` counting
 * from 0 — or the writer's notice of dropped lines, which carries `dropped`.
 */
export interface ChildLine {
  tag: string;
  i: number;
  pad: string;
  msg: string;
  dropped?: number;
}

/** `n` characters, a few of them outside ASCII (2, 3 and 4 bytes of UTF-8). */
export function padOf(n: number): string {
  const unit = "abcdefgé✓😀";
  return unit.repeat(Math.ceil(n / unit.length)).slice(0, n).replace(/\uD83D$/, "x");
}

/** The `pad` of line `i` of a child run with `cfg`. */
export function padFor(cfg: ChildConfig, i: number): string {
  return padOf(cfg.sizes[i % cfg.sizes.length]!);
}

/**
 * `sh` arguments that run one child per configuration side by side with one pipe as their
 * stdout, `(a & b & wait) | cat`: each child is `node --import tsx log-writer-child.ts '<json>'`.
 */
export function pipedChildrenShArgs(configs: ChildConfig[]): string[] {
  const starts = configs.map((_, k) => `"$0" --import tsx "$1" "$${k + 2}" &`).join(" ");
  return ["-c", `(${starts} wait) | cat`, process.execPath, LOG_WRITER_CHILD, ...configs.map((c) => JSON.stringify(c))];
}

/** The child's configuration, from its command line. */
export function childConfigFromArgv(argv: string[] = process.argv): ChildConfig {
  return JSON.parse(argv[2]!) as ChildConfig;
}

/** With `end: "flush"`, the child writes this to stderr once every line is logged. */
export const WRITTEN_LINE = "written\n";

/** With `end: "flush"`, the child's last line on stderr: the writer's counters. */
export function statsLine(stats: object): string {
  return `stats ${JSON.stringify(stats)}\n`;
}

/** The counters of every {@link statsLine} in `stderr`, in order. */
export function parseStatsLines(stderr: string): Record<string, number>[] {
  return [...stderr.matchAll(/^stats (.*)$/gm)].map((m) => JSON.parse(m[1]!) as Record<string, number>);
}
