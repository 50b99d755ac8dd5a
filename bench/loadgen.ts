/**
 * Constant-rate (open-loop) load generator, run as its own process so its CPU use and event-loop
 * pauses are not charged to the process under test.
 *
 * Requests are issued on a fixed schedule regardless of how fast answers come back (no
 * coordinated omission): a slow target makes requests queue and their latency grows, as it would
 * for real clients. Latency is measured from the moment a request is handed to the connection
 * pool until its body has been read completely.
 *
 * Input: one JSON argument `{url, method, headers, body, rate, count, warmup, connections}`; the
 * first `warmup` requests (part of the same schedule) warm the generator's own code paths and are
 * not recorded.
 * Output: one JSON line `{ok, errors, statusErrors, elapsedMs, latenciesMs: number[]}`.
 */
import { Pool } from "undici";

interface Spec {
  url: string;
  method: "POST" | "GET";
  headers: Record<string, string>;
  body?: string;
  rate: number;
  count: number;
  warmup: number;
  connections: number;
}

const spec = JSON.parse(process.argv[2] ?? "{}") as Spec;
const url = new URL(spec.url);
const pool = new Pool(url.origin, { connections: spec.connections, pipelining: 1, keepAliveTimeout: 30_000 });
const body = spec.body === undefined ? undefined : Buffer.from(spec.body);
const latencies: number[] = [];
let ok = 0;
let errors = 0;
let statusErrors = 0;
let done = 0;

function fire(record: boolean): void {
  const start = performance.now();
  pool
    .request({ path: url.pathname + url.search, method: spec.method, headers: spec.headers, body })
    .then(async (res) => {
      await res.body.dump({ limit: Infinity });
      if (!record) return;
      latencies.push(performance.now() - start);
      if (res.statusCode === 200) ok++;
      else statusErrors++;
    })
    .catch(() => {
      if (record) errors++;
    })
    .finally(() => {
      if (++done === total) finish();
    });
}

const total = spec.count + spec.warmup;
const t0 = performance.now();
let sent = 0;
let recordedFrom = 0;
const interval = 1000 / spec.rate;

function tick(): void {
  const due = Math.min(total, Math.floor((performance.now() - t0) / interval) + 1);
  while (sent < due) {
    if (sent === spec.warmup) recordedFrom = performance.now();
    fire(sent >= spec.warmup);
    sent++;
  }
  if (sent < total) setTimeout(tick, Math.max(0, t0 + sent * interval - performance.now()));
}

function finish(): void {
  const elapsedMs = performance.now() - recordedFrom;
  process.stdout.write(`${JSON.stringify({ ok, errors, statusErrors, elapsedMs, latenciesMs: latencies })}\n`);
  void pool.close().then(() => process.exit(0));
}

tick();
