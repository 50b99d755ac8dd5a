/**
 * A process that logs numbered lines to stdout through the gateway's logger, for the log writer
 * tests. Run as `node --import tsx log-writer-child.ts '<json config>'`; the configuration, the
 * lines and what the process reports on stderr are described in `log-writer-child-protocol.ts`.
 */
import { createLogger, flushLog, logWriterOf, writeFlat } from "../../src/log.js";
import { childConfigFromArgv, padFor, statsLine, WRITTEN_LINE } from "./log-writer-child-protocol.js";

const cfg = childConfigFromArgv();
if (cfg.touchStdout && !process.stdout.writable) throw new Error("stdout is not writable");
// Several of these processes write to one pipe at the same time.
const log = createLogger({ maxQueuedBytes: cfg.maxQueuedBytes, sharedOutput: cfg.sharedOutput ?? true });
const writer = logWriterOf(log)!;

for (let i = 0; i < cfg.lines; i++) {
  if (cfg.flat) writeFlat(log, "info", { tag: cfg.tag, i, pad: padFor(cfg, i) }, "line");
  else log.info({ tag: cfg.tag, i, pad: padFor(cfg, i) }, "line");
  if (cfg.burst && i % cfg.burst === cfg.burst - 1) await new Promise((r) => setImmediate(r));
}
if (cfg.end === "exit") process.exit(0);
if (cfg.end === "flush") {
  process.stderr.write(WRITTEN_LINE);
  await flushLog(log, 60_000);
  process.stderr.write(statsLine(writer.stats));
}
