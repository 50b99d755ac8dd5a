/**
 * The access log is buffered (one write per few KiB, flushed on a timer) and loses nothing on a
 * clean stop: every request's line is on stdout after SIGTERM or SIGINT.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { generateKey } from "../../src/store/crypto.js";
import { createLogger, flushLog } from "../../src/log.js";
import { exitOf, outputOf, ROOT, spawnCli, waitForLine } from "../helpers/cli.js";

const fixture = path.join(ROOT, "test/fixtures/projects/good");
const N = 600;

/** Sends `n` requests over a few keep-alive connections; returns the request ids sent. */
async function load(url: string, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `access-${i}`);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++]!;
      const res = await fetch(`${url}/hello/ada`, { headers: { "x-request-id": id } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return ids;
}

const logged = (stdout: string) =>
  new Set(
    stdout
      .split("\n")
      .filter((l) => l.includes('"msg":"request"'))
      .map((l) => (JSON.parse(l) as { requestId: string }).requestId),
  );

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(`access log: every request's line is written after ${signal}`, async () => {
    const child = spawnCli(["start", "--project", fixture, "--port", "0"], {
      TOLLGATE_STORE: "memory:",
      TOLLGATE_ENCRYPTION_KEY: generateKey(),
    });
    try {
      const [, url] = await waitForLine(child, /at (http:\/\/127\.0\.0\.1:\d+)/);
      const ids = await load(url!, N);
      child.kill(signal);
      assert.equal(await exitOf(child), 0, outputOf(child).stderr);
      const seen = logged(outputOf(child).stdout);
      const missing = ids.filter((id) => !seen.has(id));
      assert.deepEqual(missing, [], `${missing.length} of ${N} access log lines missing`);
      assert.match(outputOf(child).stdout, /"msg":"stopped"/);
    } finally {
      child.kill("SIGKILL");
    }
  });
}

test("access log: a buffered file destination holds every line, whole and in order, after flushLog", async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "tollgate-log-"));
  const file = path.join(dir, "out.log");
  const log = createLogger({ file });
  for (let i = 0; i < 1000; i++) log.info({ i, pad: "x".repeat(i % 300) }, "line");
  await flushLog(log);
  const lines = (await fs.readFile(file, "utf8")).split("\n").filter(Boolean);
  assert.equal(lines.length, 1000);
  lines.forEach((l, i) => assert.equal((JSON.parse(l) as { i: number }).i, i));
  await fs.rm(dir, { recursive: true, force: true });
});
