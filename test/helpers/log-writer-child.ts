/**
 * A process that logs numbered lines to stdout through the gateway's logger, for the log writer
 * tests. Run as `node --import tsx log-writer-child.ts '<json config>'`:
 *
 * - `tag`, `lines`: every line is `{…, "tag", "i", "pad", "msg":"line"}`, `i` counting from 0;
 * - `sizes`: the lengths of `pad`, cycled through (`pad` holds some multi-byte characters);
 * - `burst`: lines written between two turns of the event loop (default: all at once);
 * - `end`: `flush` (await flushLog, then leave the process to end by itself), `exit`
 *   (`process.exit(0)` right after the last line) or `natural` (nothing: the process ends);
 * - `maxQueuedBytes`: the logger's bound on waiting bytes;
 * - `touchStdout`: create `process.stdout` first, which makes a piped stdout non-blocking, as
 *   the CLI does when it prints to it.
 *
 * With `end: "flush"`, `written` is printed to stderr once every line is logged, and the
 * writer's counters as `stats <json>` at the end.
 */
import { pino } from "pino";
import { createLogger, flushLog } from "../../src/log.js";
import type { LogWriter } from "../../src/log-writer.js";

interface Config {
  tag: string;
  lines: number;
  sizes: number[];
  burst?: number;
  end: "flush" | "exit" | "natural";
  maxQueuedBytes?: number;
  touchStdout?: boolean;
}

const cfg = JSON.parse(process.argv[2]!) as Config;
if (cfg.touchStdout && !process.stdout.writable) throw new Error("stdout is not writable");
const log = createLogger({ maxQueuedBytes: cfg.maxQueuedBytes });
const writer = (log as unknown as Record<symbol, LogWriter>)[pino.symbols.streamSym]!;

/** `n` characters, a few of them outside ASCII (2, 3 and 4 bytes of UTF-8). */
function padOf(n: number): string {
  const unit = "abcdefgé✓😀";
  return unit.repeat(Math.ceil(n / unit.length)).slice(0, n).replace(/\uD83D$/, "x");
}

for (let i = 0; i < cfg.lines; i++) {
  log.info({ tag: cfg.tag, i, pad: padOf(cfg.sizes[i % cfg.sizes.length]!) }, "line");
  if (cfg.burst && i % cfg.burst === cfg.burst - 1) await new Promise((r) => setImmediate(r));
}
if (cfg.end === "exit") process.exit(0);
if (cfg.end === "flush") {
  process.stderr.write("written\n");
  await flushLog(log, 60_000);
  process.stderr.write(`stats ${JSON.stringify(writer.stats)}\n`);
}
