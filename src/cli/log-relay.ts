/**
 * How the workers of `--workers N` share one stdout: each worker writes its log to a pipe of its
 * own, whose only writer it is (so it writes up to 64 KiB of lines at a time, like a single
 * process), and the primary passes whole lines on through its own log writer, the only writer
 * of the real stdout. No two processes' writes to stdout can then interleave, whatever their
 * size, and a worker's lines cost the pipe one write per 64 KiB instead of one per 4 KiB
 * (PIPE_BUF, the most several writers of one pipe could write at a time without interleaving).
 */
import type { Readable } from "node:stream";
import type { LogWriter } from "../log-writer.js";

/** A line longer than this without its newline is passed on as it is (with one added). */
export const MAX_RELAYED_LINE = 4 * 1024 * 1024;
const NL = 0x0a;
const NEWLINE = Buffer.from("\n");

/**
 * Passes the lines read from `from` (a worker's stdout) to `to`, whole: a line split between two
 * reads waits for its end. Resolves once `from` has closed; a last line without its newline (the
 * worker died mid-line) is passed on with one.
 */
export function relayLines(from: Readable, to: LogWriter): Promise<void> {
  let pending: Buffer | undefined;
  from.on("data", (chunk: Buffer) => {
    const last = chunk.lastIndexOf(NL);
    if (last < 0) {
      pending = pending ? Buffer.concat([pending, chunk]) : chunk;
      if (pending.length > MAX_RELAYED_LINE) {
        to.writeLines(Buffer.concat([pending, NEWLINE]));
        pending = undefined;
      }
      return;
    }
    const whole = chunk.subarray(0, last + 1);
    to.writeLines(pending ? Buffer.concat([pending, whole]) : whole);
    pending = last + 1 < chunk.length ? chunk.subarray(last + 1) : undefined;
  });
  return new Promise((resolve) => {
    from.once("close", () => {
      if (pending) to.writeLines(Buffer.concat([pending, NEWLINE]));
      pending = undefined;
      resolve();
    });
  });
}
