/**
 * The log writer through real pipes: child processes log to a stdout that is a pipe (`… | cat`)
 * and this process reads what comes out of `cat`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import {
  padFor,
  parseStatsLines,
  pipedChildrenShArgs,
  WRITTEN_LINE,
  type ChildConfig,
  type ChildLine as Line,
} from "../test/helpers/log-writer-child-protocol.js";
import { createLogger, flatLogger, flushLog, logWriterOf, writeFlat } from "./log.js";
import { LOG_FLUSH_MS, LOG_SOLE_WRITE_BYTES, LOG_WRITE_BYTES, LogWriter } from "./log-writer.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Runs the children side by side with one pipe as their stdout, `(a & b & wait) | cat`, and
 * returns every line `cat` passed on, parsed. `stall` holds the reading end: with `untilWritten`,
 * from the start until 300 ms after a child said it has logged all its lines; with
 * `everyMs`/`forMs`, now and then while reading.
 */
async function runPiped(
  children: ChildConfig[],
  stall: { untilWritten?: boolean; everyMs?: number; forMs?: number } = {},
): Promise<{ lines: Line[]; raw: string[]; stderr: string; stats: Record<string, number>[] }> {
  const sh = spawn("sh", pipedChildrenShArgs(children), {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const chunks: Buffer[] = [];
  let stderr = "";
  sh.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  sh.stdout.on("data", (c: Buffer) => chunks.push(c));
  const timers: NodeJS.Timeout[] = [];
  if (stall.untilWritten) {
    sh.stdout.pause();
    const onErr = () => {
      if (!stderr.includes(WRITTEN_LINE)) return;
      sh.stderr.off("data", onErr);
      timers.push(setTimeout(() => sh.stdout.resume(), 300));
    };
    sh.stderr.on("data", onErr);
  }
  if (stall.everyMs && stall.forMs) {
    const forMs = stall.forMs;
    timers.push(
      setInterval(() => {
        sh.stdout.pause();
        timers.push(setTimeout(() => sh.stdout.resume(), forMs));
      }, stall.everyMs),
    );
  }
  const code = await new Promise<number | null>((resolve) => sh.on("close", resolve));
  for (const t of timers) clearTimeout(t);
  assert.equal(code, 0, stderr);
  const raw = Buffer.concat(chunks).toString("utf8").split("\n");
  assert.equal(raw.pop(), "", "the output ends with a whole line");
  const lines = raw.map((l, n) => {
    try {
      return JSON.parse(l) as Line;
    } catch {
      assert.fail(`line ${n} is not JSON (a torn or interleaved write?): ${l.slice(0, 200)}`);
    }
  });
  const stats = parseStatsLines(stderr);
  return { lines, raw, stderr, stats };
}

/** Asserts that `tag`'s lines are exactly 0..n-1 in order, each with its padding intact. */
function assertAllInOrder(lines: Line[], cfg: ChildConfig): void {
  const mine = lines.filter((l) => l.tag === cfg.tag);
  assert.equal(mine.length, cfg.lines, `${cfg.tag}: ${cfg.lines - mine.length} lines missing`);
  mine.forEach((l, k) => {
    assert.equal(l.i, k, `${cfg.tag}: line ${k} out of order`);
    assert.equal(l.pad, padFor(cfg, k), `${cfg.tag}: line ${k} damaged`);
  });
}

// Each of the next three runs once with pino's lines and once with writeFlat's, which are
// encoded straight into the writer's chunk (`LogWriter.encode`).
for (const flat of [false, true]) {
  const how = flat ? "writeFlat" : "pino";

  test(`lines of many sizes arrive whole and in order through a pipe (${how})`, async () => {
    // Up to 3 bytes per character: several of these lines span more than a 4 KiB write.
    const cfg: ChildConfig = { tag: "a", lines: 3000, sizes: [0, 90, 400, 1300, 3000, 4500, 12, 2100], burst: 200, end: "flush", flat };
    const { lines, stats } = await runPiped([cfg], { everyMs: 40, forMs: 20 });
    assertAllInOrder(lines, cfg);
    assert.equal(stats.length, 1);
    assert.equal(stats[0]!.dropped!, 0);
  });

  test(`two processes sharing one pipe never interleave mid-line (${how})`, async () => {
    // Lines of up to about 3.9 KiB (each goes out whole in one write of at most 4096 bytes), the
    // reader stalling now and then so that both writers block on a full pipe.
    const sizes = [300, 1200, 30, 2500, 700, 1250];
    const a: ChildConfig = { tag: "a", lines: 4000, sizes, burst: 50, end: "flush", flat };
    const b: ChildConfig = { ...a, tag: "b", sizes: [...sizes].reverse() };
    const { lines, raw, stats } = await runPiped([a, b], { untilWritten: true });
    assert.ok(raw.every((l) => Buffer.byteLength(l) < LOG_WRITE_BYTES), "the test's lines fit one write");
    assertAllInOrder(lines, a);
    assertAllInOrder(lines, b);
    assert.deepEqual(
      stats.map((s) => s.dropped),
      [0, 0],
    );
  });

  test(`a stalled destination: lines beyond the bound are dropped, then one line counts them (${how})`, async () => {
    const cfg: ChildConfig = { tag: "d", lines: 6000, sizes: [500], burst: 20, end: "flush", maxQueuedBytes: 64 * 1024, flat };
    const { lines, stats } = await runPiped([cfg], { untilWritten: true });
    const data = lines.filter((l) => l.tag === "d");
    // One notice per stall; a bound this small may also be reached before the reader stops.
    const notices = lines.filter((l) => l.msg === "log output stalled; lines dropped");
    const dropped = notices.reduce((sum, l) => sum + l.dropped!, 0);
    assert.ok(stats[0]!.dropped! > 1000, `lines were dropped while the reader stalled (${stats[0]!.dropped!})`);
    assert.ok(notices.length >= 1);
    assert.equal(dropped, stats[0]!.dropped!, "every dropped line is counted in a notice");
    assert.equal(data.length + dropped, cfg.lines, "every line was either written or counted");
    assert.equal(lines[lines.length - 1], notices[notices.length - 1], "the count comes once the backlog has drained");
    // What was kept is whole and in order.
    let last = -1;
    for (const l of data) {
      assert.ok(l.i > last);
      assert.equal(l.pad, padFor(cfg, l.i));
      last = l.i;
    }
  });
}

test("process.exit right after logging loses nothing", async () => {
  const cfg: ChildConfig = { tag: "x", lines: 2000, sizes: [10, 600, 2000, 5000], end: "exit" };
  const { lines } = await runPiped([cfg]);
  const seen = lines.filter((l) => l.tag === "x");
  assert.equal(seen.length, cfg.lines);
  // A chunk already on the thread pool at exit may land after those written synchronously.
  assert.deepEqual(
    seen.map((l) => l.i).sort((x, y) => x - y),
    Array.from({ length: cfg.lines }, (_, i) => i),
  );
  for (const l of seen) assert.equal(l.pad, padFor(cfg, l.i));
});

test("a process that ends by itself with lines still buffered writes them at exit", async () => {
  const cfg: ChildConfig = { tag: "n", lines: 7, sizes: [100], end: "natural" };
  const { lines } = await runPiped([cfg]);
  assertAllInOrder(lines, cfg);
});

test("EAGAIN on a non-blocking pipe whose reader stalls: retried, nothing lost", async () => {
  // About 3 MB, more than the pipe, the socket behind cat and cat's buffer hold together.
  const cfg: ChildConfig = { tag: "e", lines: 6000, sizes: [500], burst: 500, end: "flush", touchStdout: true };
  const { lines, stats } = await runPiped([cfg], { untilWritten: true });
  assertAllInOrder(lines, cfg);
  assert.equal(stats.length, 1);
  assert.ok(stats[0]!.retries! > 0, "the writer met EAGAIN");
  assert.ok(stats[0]!.retries! < 500, `retries are spaced, not spinning (${stats[0]!.retries!})`);
  assert.equal(stats[0]!.dropped!, 0);
  assert.equal(stats[0]!.failed!, 0);
});

async function tmpFile(): Promise<{ file: string; done: () => Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "tollgate-logw-"));
  return { file: path.join(dir, "out.log"), done: () => fs.rm(dir, { recursive: true, force: true }) };
}

test("a lone line is written by the timer, about LOG_FLUSH_MS after it was logged", async () => {
  const { file, done } = await tmpFile();
  const log = createLogger({ file });
  const t0 = Date.now();
  log.info("lonely");
  const size = async () => (await fs.stat(file)).size;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await size(), 0, "still buffered");
  while ((await size()) === 0 && Date.now() - t0 < LOG_FLUSH_MS + 3000) await new Promise((r) => setTimeout(r, 20));
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= LOG_FLUSH_MS - 50 && elapsed < LOG_FLUSH_MS + 1000, `written after ${elapsed} ms`);
  assert.equal(JSON.parse(await fs.readFile(file, "utf8")).msg, "lonely");
  logWriterOf(log)!.close();
  await done();
});

test("flushLog resolves once every line is written; pino's child and flat loggers and writeFlat write through the writer", async () => {
  const { file, done } = await tmpFile();
  const log = createLogger({ file });
  const writer = logWriterOf(log)!;
  assert.ok(writer instanceof LogWriter);
  assert.equal((writer as unknown as Record<symbol, unknown>)[pino.symbols.needsMetadataGsym], undefined, "writeFlat's fast path stays open");
  const child = log.child({ component: "c" });
  for (let i = 0; i < 500; i++) {
    log.info({ i, kind: "root" }, "r");
    child.info({ i, kind: "child" }, "c");
    writeFlat(log, "info", { event: "flat", i, token: "secret" });
    flatLogger(log).info({ i, kind: "flatLogger" });
  }
  await flushLog(log);
  assert.ok(writer.stats.writes < 2000 / 10, `lines are written many to a write (${writer.stats.writes} writes)`);
  const lines = (await fs.readFile(file, "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 2000);
  lines.forEach((l, n) => assert.equal(l.i, Math.floor(n / 4)));
  assert.equal(lines[1]!.component, "c");
  assert.equal(lines[2]!.event, "flat");
  assert.equal(lines[2]!.token, "[redacted]");
  assert.equal(lines[3]!.kind, "flatLogger");
  writer.close();
  await done();
});

test("a sole writer writes up to 64 KiB at a time; one that shares its output with other processes at most PIPE_BUF", async () => {
  for (const sharedOutput of [false, true]) {
    const { file, done } = await tmpFile();
    const log = createLogger({ file, sharedOutput });
    const writer = logWriterOf(log)!;
    const pad = "x".repeat(400);
    for (let i = 0; i < 1000; i++) log.info({ i, pad }, "line");
    await flushLog(log);
    const bytes = (await fs.stat(file)).size;
    const limit = sharedOutput ? LOG_WRITE_BYTES : LOG_SOLE_WRITE_BYTES;
    // Every chunk but the last is full up to the last line that fit.
    assert.ok(writer.stats.writes >= Math.ceil(bytes / limit), `${writer.stats.writes} writes of at most ${limit} bytes for ${bytes}`);
    assert.ok(writer.stats.writes <= Math.ceil(bytes / (limit - 600)), `${writer.stats.writes} writes for ${bytes} bytes (chunks of up to ${limit})`);
    assert.equal((await fs.readFile(file, "utf8")).split("\n").filter(Boolean).length, 1000);
    writer.close();
    await done();
  }
});

test("many writers share one exit listener", async () => {
  const { file, done } = await tmpFile();
  const writers = [new LogWriter({ dest: file })];
  const before = process.listenerCount("exit");
  for (let i = 0; i < 20; i++) writers.push(new LogWriter({ dest: file }));
  assert.equal(process.listenerCount("exit"), before);
  for (const w of writers) w.close();
  await done();
});
