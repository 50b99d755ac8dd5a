/**
 * The buffered writer behind the gateway's log (stdout or a file), in the way high-rate servers
 * write access logs:
 *
 * - Lines are copied as UTF-8 straight into a preallocated chunk (`chunkBytes`: 4 KiB by
 *   default, 64 KiB for a process that is its destination's only writer, see `createLogger`);
 *   nothing is concatenated and no line is measured unless it might not fit. A caller that
 *   knows its line's parts (the access and audit lines, `writeFlat`) encodes them into the
 *   chunk itself ({@link LogWriter.encode}), so no string is made for the line at all.
 * - A chunk holds whole lines only and is handed to the kernel once it cannot take the next line,
 *   or {@link LOG_FLUSH_MS} after its first line: in one `write(2)` per chunk, made from the
 *   event loop's check phase (`setImmediate`) after the I/O that filled it — never inside a
 *   request's own handling, and without a hand-over to libuv's thread pool, whose thread wake-up
 *   and completion cost several times the write itself at moderate rates (measured: about 80 µs
 *   of CPU per request less at 500 requests/s). Chunks go out in order. Writes to a pipe of at most
 *   PIPE_BUF (4096) bytes are atomic: with 4 KiB chunks the lines of several processes writing
 *   one pipe at once — the workers of `--workers N` and their primary — never interleave
 *   mid-line. A single line longer than that goes out in a write of its own, and the kernel may
 *   then interleave it with another process's write (only when the pipe is too full to take it
 *   at once).
 * - A pipe or socket on stdout/stderr is put in non-blocking mode (Node does so when the stream
 *   is first used), so a full pipe answers `EAGAIN` instead of stalling the process; the writer
 *   then tries again shortly after, nothing is dropped for it and the event loop does not spin. A
 *   file path is opened for appending (regular files do not stall). Any other write
 *   error is reported once on stderr and the chunk that failed is dropped; writing goes on.
 * - Memory is bounded: while more than `maxQueuedBytes` wait (the destination is stalled), new
 *   lines are dropped and counted, until the backlog is down to half of that; then one line says
 *   how many were dropped.
 * - `flush(cb)` (what pino's `logger.flush(cb)` calls) writes everything queued and calls back
 *   once it is written; `flushSync()` writes it synchronously. Every writer is flushed
 *   synchronously on `process.on("exit")` (one listener for all writers), so a clean exit —
 *   `process.exit()` included — loses nothing.
 *
 * @see https://man7.org/linux/man-pages/man7/pipe.7.html (PIPE_BUF: atomic writes)
 */
import { Buffer } from "node:buffer";
import fs from "node:fs";

/** Largest write: PIPE_BUF, the size up to which a write to a pipe is atomic. */
export const LOG_WRITE_BYTES = 4096;
/**
 * Chunk size for a process that is the only writer of its destination (no cluster workers
 * beside it): no write can interleave with another process's, so chunks are as large as a
 * pipe's default capacity — one system call per 64 KiB of lines instead of per 4 KiB.
 */
export const LOG_SOLE_WRITE_BYTES = 64 * 1024;
/** Longest a line waits in the buffer. */
export const LOG_FLUSH_MS = 1000;
/** Default bound on the bytes waiting to be written (see {@link LogWriterOptions.maxQueuedBytes}). */
export const LOG_MAX_QUEUED_BYTES = 32 * 1024 * 1024;
/** Longest `flushSync` keeps retrying a destination that answers `EAGAIN`. */
export const LOG_SYNC_FLUSH_MS = 5000;
/** Wait before a write that failed with `EAGAIN` is tried again. */
const RETRY_MS = 10;

/** Options of {@link LogWriter}. */
export interface LogWriterOptions {
  /** A file descriptor (not closed by the writer) or a path (opened for appending). */
  dest: number | string;
  /** Bytes per chunk and largest write (default {@link LOG_WRITE_BYTES}). */
  chunkBytes?: number;
  /** Longest a line waits before its chunk is written (default {@link LOG_FLUSH_MS}). */
  flushMs?: number;
  /**
   * While more than this many bytes wait to be written, new lines are dropped and counted
   * (default {@link LOG_MAX_QUEUED_BYTES}; at least two chunks).
   */
  maxQueuedBytes?: number;
  /** Longest `flushSync` retries a destination that answers `EAGAIN` (default {@link LOG_SYNC_FLUSH_MS}). */
  syncFlushMs?: number;
  /**
   * Called once the backlog has drained after lines were dropped, with how many; it should log
   * that (through this writer). Default: the writer writes a JSON line of its own.
   */
  onDropped?: (count: number) => void;
}

/** A chunk handed over for writing: `buf[start, end)` is still to be written. */
interface Chunk {
  buf: Buffer;
  start: number;
  end: number;
  /** Bytes it counts in the backlog. */
  size: number;
  /** `flush` callbacks waiting for this chunk (the last one queued when they were called). */
  cbs: Array<(err?: Error | null) => void> | undefined;
  /** Whether `buf` came from the pool and goes back to it. */
  pooled: boolean;
}

/** Counters for diagnostics and tests. */
export interface LogWriterStats {
  /** `write(2)` calls made (asynchronous and synchronous). */
  writes: number;
  /** Writes that met `EAGAIN` and were tried again. */
  retries: number;
  /** Lines dropped because the backlog was over its bound. */
  dropped: number;
  /** Chunks dropped because their write failed. */
  failed: number;
}

/** Spare chunks kept per writer. */
const POOL_MAX = 16;
/** Chunks cut from one allocation. */
const SLAB_CHUNKS = 16;

/** A buffered, line-preserving log destination for pino (see the module comment). */
export class LogWriter {
  readonly fd: number;
  readonly stats: LogWriterStats = { writes: 0, retries: 0, dropped: 0, failed: 0 };
  private readonly ownsFd: boolean;
  private readonly chunkBytes: number;
  private readonly flushMs: number;
  private readonly maxQueued: number;
  private readonly syncFlushMs: number;
  private readonly onDropped: ((count: number) => void) | undefined;
  /** The chunk lines are copied into, and how much of it is used. */
  private buf: Buffer;
  private used = 0;
  /** When the first line entered the current chunk (`Date.now()`). */
  private firstAt = 0;
  /** Chunks waiting to be written, oldest first. */
  private readonly queue: Chunk[] = [];
  /** Bytes in `queue` plus `used`. */
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Lines dropped in the current stall; non-zero means new lines are being dropped. */
  private dropping = 0;
  private reported = false;
  private closed = false;
  /** Spare chunks, and the slab new ones are cut from. */
  private readonly pool: Buffer[] = [];
  private slab: Buffer | undefined;
  private slabOff = 0;
  private readonly ref: WeakRef<LogWriter>;
  private drainScheduled = false;

  constructor(opts: LogWriterOptions) {
    this.chunkBytes = Math.max(256, opts.chunkBytes ?? LOG_WRITE_BYTES);
    this.flushMs = opts.flushMs ?? LOG_FLUSH_MS;
    this.maxQueued = Math.max(2 * this.chunkBytes, opts.maxQueuedBytes ?? LOG_MAX_QUEUED_BYTES);
    this.syncFlushMs = opts.syncFlushMs ?? LOG_SYNC_FLUSH_MS;
    this.onDropped = opts.onDropped;
    if (typeof opts.dest === "number") {
      this.fd = opts.dest;
      this.ownsFd = false;
      // Node opens a pipe or socket on stdout/stderr in non-blocking mode when the stream is
      // first used: a full pipe then answers EAGAIN instead of stalling the process.
      if (opts.dest === 1) void process.stdout;
      else if (opts.dest === 2) void process.stderr;
    } else {
      this.fd = fs.openSync(opts.dest, "a");
      this.ownsFd = true;
    }
    this.buf = Buffer.allocUnsafeSlow(this.chunkBytes);
    this.ref = new WeakRef(this);
    if (live.size >= 64) for (const ref of live) if (!ref.deref()) live.delete(ref);
    live.add(this.ref);
    if (this.ownsFd) fds.register(this, this.fd, this.ref);
    if (!hooked) {
      hooked = true;
      process.on("exit", flushAllSync);
    }
  }

  /** Queues one line (pino hands over whole lines, newline included). */
  write(line: string): boolean {
    if (this.closed) return false;
    const len = line.length;
    if (this.dropping !== 0 || this.queued + len > this.maxQueued) return this.drop();
    const space = this.chunkBytes - this.used;
    if (len * 3 <= space) {
      // A UTF-16 code unit is at most 3 bytes of UTF-8: it fits.
      this.copy(line);
      return true;
    }
    const bytes = Buffer.byteLength(line, "utf8");
    if (bytes <= space) {
      this.copy(line);
      return true;
    }
    if (this.used > 0) this.seal();
    if (bytes <= this.chunkBytes) {
      this.copy(line);
      return true;
    }
    // Longer than one atomic write: it goes out on its own.
    this.enqueue(Buffer.from(line, "utf8"), false);
    this.pump();
    return true;
  }

  /**
   * Queues one line encoded straight into the current chunk, with no string made for it:
   * `encode(buf, at, limit)` writes the line's UTF-8 bytes (newline included) from `at` and
   * returns where they end; -1 when they would pass `limit` (it then runs once more, at the start
   * of an empty chunk), any other negative number when it gives up. What it wrote counts only
   * once it returns an end. True when the line was taken (queued, or dropped and counted like
   * any line while the backlog is over its bound); false when it was not, and the caller
   * writes it another way ({@link write}): a line longer than a chunk, or one `encode` refused.
   */
  encode(encode: (buf: Buffer, at: number, limit: number) => number): boolean {
    if (this.closed) return true;
    if (this.dropping !== 0) return this.drop();
    let start = this.used;
    let end = encode(this.buf, start, this.chunkBytes);
    if (end === -1 && start > 0) {
      this.seal();
      start = 0;
      end = encode(this.buf, 0, this.chunkBytes);
    }
    if (end < 0) return false;
    const n = end - start;
    if (this.queued + n > this.maxQueued) return this.drop();
    if (start === 0) this.opened();
    this.used = end;
    this.queued += n;
    return true;
  }

  /** Writes everything queued; `cb` is called once it is written (with the error of a failed write). */
  flush(cb?: (err?: Error | null) => void): void {
    if (this.used > 0) this.seal();
    if (cb) {
      const last = this.queue[this.queue.length - 1];
      if (last) (last.cbs ??= []).push(cb);
      else process.nextTick(cb);
    }
    this.pump();
  }

  /**
   * Writes everything queued synchronously (the exit hook). A destination answering `EAGAIN` is
   * retried for up to `syncFlushMs`; what is still left then is dropped, and reported.
   */
  flushSync(): void {
    if (this.used > 0) this.seal();
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    const deadline = Date.now() + this.syncFlushMs;
    let wait = 1;
    while (this.queue.length > 0) {
      if (this.writeOldest() !== "again") continue;
      if (Date.now() >= deadline) {
        this.dropOldest(Object.assign(new Error("write EAGAIN: the destination stayed full"), { code: "EAGAIN" }));
        continue;
      }
      this.stats.retries++;
      sleep(wait);
      wait = Math.min(wait * 2, 20);
    }
  }

  /**
   * One `write(2)` of the oldest chunk: `more` (part of it is left), `done` (written, or dropped
   * after an error other than `EAGAIN`), or `again` (`EAGAIN`: the chunk stays first in line).
   */
  private writeOldest(): "more" | "done" | "again" {
    const c = this.queue[0]!;
    try {
      this.stats.writes++;
      c.start += fs.writeSync(this.fd, c.buf, c.start, c.end - c.start);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") return "again";
      this.dropOldest(e as Error);
      return "done";
    }
    if (c.start < c.end) return "more";
    this.queue.shift();
    this.done(c, undefined);
    return "done";
  }

  /** Gives up on the oldest chunk after `err` (reported once). */
  private dropOldest(err: Error): void {
    const c = this.queue.shift()!;
    this.report(err);
    this.stats.failed++;
    this.done(c, err);
  }

  /** Flushes synchronously and stops writing; closes the file if the writer opened it. */
  close(): void {
    if (this.closed) return;
    this.flushSync();
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    live.delete(this.ref);
    if (this.ownsFd) {
      fds.unregister(this.ref);
      if (!this.retryTimer && this.queue.length === 0) fs.close(this.fd, () => {});
    }
  }

  /** A line is dropped while the backlog is over its bound: counted, for the notice that follows. */
  private drop(): true {
    this.dropping++;
    this.stats.dropped++;
    return true;
  }

  /** The first line enters the current chunk: it is written at the latest {@link flushMs} from now. */
  private opened(): void {
    this.firstAt = Date.now();
    this.timer ??= setTimeout(this.onTimer, this.flushMs).unref();
  }

  private copy(line: string): void {
    if (this.used === 0) this.opened();
    const n = this.buf.write(line, this.used, "utf8");
    this.used += n;
    this.queued += n;
  }

  /** Hands the current chunk over for writing and starts a new one. */
  private seal(): void {
    const buf = this.buf;
    const used = this.used;
    this.buf = this.pool.pop() ?? this.carve();
    this.used = 0;
    this.queued -= used;
    this.enqueue(buf, true, used);
    this.pump();
  }

  /** A new chunk, cut from a slab of {@link SLAB_CHUNKS} chunks (one allocation for several). */
  private carve(): Buffer {
    if (!this.slab || this.slabOff + this.chunkBytes > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(this.chunkBytes * SLAB_CHUNKS);
      this.slabOff = 0;
    }
    const chunk = this.slab.subarray(this.slabOff, this.slabOff + this.chunkBytes);
    this.slabOff += this.chunkBytes;
    return chunk;
  }

  private enqueue(buf: Buffer, pooled: boolean, end = buf.length): void {
    this.queue.push({ buf, start: 0, end, size: end, cbs: undefined, pooled });
    this.queued += end;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.used === 0 || this.closed) return;
    const left = this.firstAt + this.flushMs - Date.now();
    if (left > 1) this.timer = setTimeout(this.onTimer, left).unref();
    else this.seal();
  };

  /** Writes the queue from the event loop's next check phase: never on a request's own path. */
  private pump(): void {
    if (this.drainScheduled || this.retryTimer || this.queue.length === 0) return;
    this.drainScheduled = true;
    setImmediate(this.onDrain);
  }

  private readonly onDrain = (): void => {
    this.drainScheduled = false;
    while (this.queue.length > 0 && !this.retryTimer) {
      const r = this.writeOldest();
      if (r === "again") {
        this.stats.retries++;
        this.retryTimer = setTimeout(this.onRetry, RETRY_MS);
        return;
      }
      if (r === "done" && this.dropping !== 0 && this.queued <= this.maxQueued / 2) this.notice();
    }
    if (this.closed && this.ownsFd && !this.retryTimer && this.queue.length === 0) fs.close(this.fd, () => {});
  };

  private readonly onRetry = (): void => {
    this.retryTimer = undefined;
    this.pump();
  };

  /** A chunk is written (or dropped): its bytes leave the backlog, its buffer goes back to the pool. */
  private done(c: Chunk, err: Error | undefined): void {
    this.queued -= c.size;
    if (c.pooled && this.pool.length < POOL_MAX) this.pool.push(c.buf);
    if (c.cbs) for (const cb of c.cbs) process.nextTick(cb, err ?? null);
  }

  /** The backlog has drained after a stall: say how many lines were dropped. */
  private notice(): void {
    const count = this.dropping;
    this.dropping = 0;
    try {
      if (this.onDropped) this.onDropped(count);
      else this.write(`{"level":40,"time":"${new Date().toISOString()}","dropped":${count},"msg":"log output stalled; lines dropped"}\n`);
    } catch {
      // The notice is best effort.
    }
  }

  private report(err: Error): void {
    if (this.reported) return;
    this.reported = true;
    try {
      fs.writeSync(2, `log: writing to descriptor ${this.fd} failed (${err.message}); failed lines are dropped, further errors not reported\n`);
    } catch {
      // stderr is gone too.
    }
  }
}

/** Every open writer, flushed synchronously when the process exits. */
const live = new Set<WeakRef<LogWriter>>();
let hooked = false;
/** Closes the files of writers that were dropped without `close()`. */
const fds = new FinalizationRegistry<number>((fd) => fs.close(fd, () => {}));

/** Run before the writers are flushed at exit: work that still has lines to write (see {@link beforeExitFlush}). */
const exitWork: Array<() => void> = [];

/**
 * Registers `fn` to run when the process exits, before the writers are flushed: for work that was
 * put off until after a request's work and would write log lines (the audit trail's queue).
 */
export function beforeExitFlush(fn: () => void): void {
  exitWork.push(fn);
}

function flushAllSync(): void {
  for (const fn of exitWork) {
    try {
      fn();
    } catch {
      // The flush below must happen whatever the work did.
    }
  }
  for (const ref of live) {
    const w = ref.deref();
    if (!w) {
      live.delete(ref);
      continue;
    }
    try {
      w.flushSync();
    } catch {
      // One failing destination must not keep the others from being flushed.
    }
  }
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleep(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}
