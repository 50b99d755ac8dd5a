import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { LogWriter } from "../log-writer.js";
import { relayLines } from "./log-relay.js";

async function withWriter(chunkBytes: number, fn: (w: LogWriter, file: string) => Promise<void>): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "tollgate-relay-"));
  const file = path.join(dir, "out.log");
  const w = new LogWriter({ dest: file, chunkBytes });
  try {
    await fn(w, file);
  } finally {
    w.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const flushed = (w: LogWriter) => new Promise<void>((resolve, reject) => w.flush((err) => (err ? reject(err) : resolve())));

test("relayed lines arrive whole and in order, however the reads split them; a last line without its newline gets one", async () => {
  await withWriter(4096, async (w, file) => {
    const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify({ i, text: `é${"x".repeat(i % 97)}` }));
    const bytes = Buffer.from(lines.join("\n") + "\n" + '{"cut":"mid-line');
    const from = new PassThrough();
    const done = relayLines(from, w);
    // Pieces of 1 to 700 bytes: lines (and a two-byte character) split across reads.
    for (let at = 0, n = 1; at < bytes.length; at += n, n = (n * 7 + 3) % 700 || 1) {
      from.write(bytes.subarray(at, at + n));
      await new Promise((r) => setImmediate(r));
    }
    from.end();
    await done;
    await flushed(w);
    const out = (await fs.readFile(file, "utf8")).split("\n");
    assert.equal(out.pop(), "", "the output ends with a newline");
    assert.deepEqual(out, [...lines, '{"cut":"mid-line']);
    assert.ok(w.stats.writes > 1, "written in several writes");
  });
});

test("writeLines: each write holds at most one chunk of whole lines; a longer line goes out alone", async () => {
  await withWriter(1024, async (w, file) => {
    const lines = Array.from({ length: 40 }, (_, i) => `${i}:${"y".repeat(i === 20 ? 3000 : 90)}`);
    const writes: number[] = [];
    const before = w.stats.writes;
    w.writeLines(Buffer.from(lines.join("\n") + "\n"));
    await flushed(w);
    writes.push(w.stats.writes - before);
    const text = await fs.readFile(file, "utf8");
    assert.deepEqual(text.split("\n").slice(0, -1), lines);
    // 39 lines of 93–94 bytes fit 10 to a 1 KiB chunk, plus the long line on its own.
    assert.ok(writes[0]! >= 5 && writes[0]! <= 7, `${writes[0]} writes`);
  });
});
