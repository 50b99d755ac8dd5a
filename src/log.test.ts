import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { mock, test } from "node:test";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { censorFlat, createLogger, FlatShape, flatLogger, flatNumber, flatString, flushLog, isoTimestamp, logWriterOf, REDACT_PATHS, writeFlat } from "./log.js";
import { LOG_SOLE_WRITE_BYTES } from "./log-writer.js";

function capture() {
  const out = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  out.setEncoding("utf8").on("data", (d: string) => {
    for (const l of d.split("\n")) if (l) lines.push(JSON.parse(l));
  });
  return { log: createLogger({ destination: out }), lines };
}

test("censorFlat censors every field name the logger redacts, and nothing else", () => {
  const names = new Set(REDACT_PATHS.map((p) => p.replace(/^.*[.[]"?/, "").replace(/"?\]$/, "")));
  for (const name of names) {
    const out = censorFlat({ event: "x", [name]: "s3cr3t", keep: "visible" });
    assert.equal(out[name], "[redacted]", name);
    assert.equal(out.keep, "visible");
  }
  const clean = { event: "x", subjectId: "alice", errorCode: -32000 };
  assert.equal(censorFlat(clean), clean, "returned as is when nothing matches");
  const original = { token: "t" };
  censorFlat(original);
  assert.equal(original.token, "t", "the caller's object is not changed");
});

test("the flat logger writes through the same destination and level, without path redaction", async () => {
  const { log, lines } = capture();
  const flat = flatLogger(log);
  assert.equal(flatLogger(log), flat, "one child per logger");
  flat.info(censorFlat({ event: "e", code: "abc", path: "/mcp" }), "flat");
  log.info({ nested: { access_token: "t" } }, "redacted");
  flat.debug({ event: "hidden" });
  await new Promise((r) => setImmediate(r));
  assert.equal(lines.length, 2);
  assert.equal(lines[0]!.code, "[redacted]");
  assert.equal(lines[0]!.service, "tollgate");
  assert.deepEqual(lines[1]!.nested, { access_token: "[redacted]" });
});

test("writeFlat writes exactly the line pino writes for the censored object", async () => {
  const out = new PassThrough();
  const raw: string[] = [];
  out.setEncoding("utf8").on("data", (d: string) => raw.push(d));
  const log = createLogger({ destination: out, level: "info" });
  const samples: Array<[Record<string, string | number | boolean | undefined>, string | undefined]> = [
    [{ requestId: "r-1", method: "POST", path: "/mcp", route: "mcp", status: 200, ms: 1.25 }, "request"],
    [{ event: "mcp_capability_completed", subjectId: undefined, capabilityName: 'say "hi" \\ there', outcome: "success", errorCode: -32000, latencyMs: 0.1 + 0.2 }, undefined],
    [{ event: "e", text: "line\nbreak\ttab\u0001ctl", uni: "héllo ✓ 😀", long: "x".repeat(150) + '"' }, undefined],
    [{ event: "e", nan: Number.NaN, inf: Number.POSITIVE_INFINITY, neg: -0, big: 1e21, small: 1e-7, yes: true, no: false }, "with msg \"quoted\""],
    [{ event: "e", code: "abc", token: "t", client_secret: "s", keep: "visible" }, undefined],
  ];
  const lines = () => raw.join("").split("\n").filter(Boolean);
  for (const [obj, msg] of samples) {
    raw.length = 0;
    writeFlat(log, "info", obj, msg);
    if (msg === undefined) flatLogger(log).info(censorFlat(obj));
    else flatLogger(log).info(censorFlat(obj), msg);
    await new Promise((r) => setImmediate(r));
    const [mine, pinos] = lines();
    assert.equal(lines().length, 2);
    const untimed = (l: string | undefined) => l?.replace(/"time":"[^"]*"/, '"time":"T"');
    assert.ok(mine && pinos, "two lines");
    assert.equal(untimed(mine), untimed(pinos));
    assert.match(mine, /"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"/);
  }
  raw.length = 0;
  writeFlat(log, "debug", { event: "hidden" });
  writeFlat(log, "info", { event: "nested", detail: { a: 1 } as never }, "falls back to pino");
  await new Promise((r) => setImmediate(r));
  assert.equal(lines().length, 1, "debug is off; a non-scalar value still gets its line");
  assert.deepEqual(JSON.parse(lines()[0]!).detail, { a: 1 });
});

/** Flat objects of every kind writeFlat meets, with the line's msg. */
const FLAT_SAMPLES: Array<[Record<string, string | number | boolean | undefined>, string | undefined]> = [
  [{ requestId: "r-1", method: "POST", path: "/mcp", route: "mcp", status: 200, ms: 1.25 }, "request"],
  [{ event: "mcp_capability_completed", subjectId: undefined, capabilityName: 'say "hi" \\ there', outcome: "success", errorCode: -32000, latencyMs: 0.1 + 0.2 }, undefined],
  [{ event: "e", text: "line\nbreak\ttab\u0001ctl\u007f", uni: "héllo ✓ 😀", lone: "a\ud800b", long: "x".repeat(150) + '"' }, undefined],
  [{ event: "e", nan: Number.NaN, inf: Number.POSITIVE_INFINITY, neg: -0, big: 1e21, small: 1e-7, yes: true, no: false }, 'with msg "quoted" ✓'],
  [{ event: "e", code: "abc", token: "t", client_secret: "s", keep: "visible", "odd \"key\" é": 1 }, undefined],
  [{ event: "e", empty: "", zero: 0, tiny: 0.05, neg: -12.5 }, ""],
  // Numbers of every kind the encoder writes digit by digit (integers, hundredths) or not.
  [numbers(), "numbers"],
];

function numbers(): Record<string, number> {
  const out: Record<string, number> = {};
  const fixed = [0, 1, 9, 10, 99, 100, 101, 999_999_999_999_999, 1e15, -1, -10, -32_000, -999_999_999_999_999, 0.01, 0.1, 0.5, 1.05, 1.5, 12.34, 99.99, 100.01, 0.3 + 0.6, 2 ** 53, 123456789.12];
  fixed.forEach((n, i) => (out[`f${i}`] = n));
  for (let i = 0; i < 300; i++) {
    const r = Math.random();
    out[`r${i}`] = i % 3 === 0 ? Math.round(r * 10 ** (i % 16)) : i % 3 === 1 ? Math.round(r * 10 ** (i % 12)) / 100 : r * 10 ** (i % 8) - 5;
  }
  return out;
}

test("through the buffered writer, writeFlat encodes exactly the line pino writes, at chunk ends too", async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "tollgate-flat-"));
  const file = path.join(dir, "out.log");
  const log = createLogger({ file, level: "info" });
  // Enough pairs to fill several chunks: lines meet every chunk's end at a different place, where
  // an encoded line that does not fit starts again in the next chunk.
  let bytes = 0;
  let pairs = 0;
  const both = (o: Record<string, unknown>, msg: string | undefined) => {
    writeFlat(log, "info", o as Record<string, string>, msg);
    if (msg === undefined) flatLogger(log).info(censorFlat(o as Record<string, string>));
    else flatLogger(log).info(censorFlat(o as Record<string, string>), msg);
    bytes += 2 * JSON.stringify(o).length;
    pairs++;
  };
  for (let round = 0; bytes < 3 * LOG_SOLE_WRITE_BYTES; round++) {
    // Each sample once, twice or three times in a row: fields met again at their place in the
    // line are copied as the bytes kept for them, and must still be the same line.
    for (const [obj, msg] of FLAT_SAMPLES) for (let again = 0; again <= round % 3; again++) both({ ...obj, round }, msg);
  }
  // Two kinds of line with one field order, alternating, as the audit trail writes them: some
  // fields the same every time, some changing per pair, every fifth pair or once; a value
  // that is not a scalar, a redacted name and a number in place of a string at a kept place.
  for (let i = 0; i < 40; i++) {
    const shared = { event: "", route: "mcp", id: `req-${i}`, every5: `v${Math.floor(i / 5)}`, token: i < 20 ? "a" : "b", status: i === 30 ? "200" : 200 };
    both({ ...shared, event: "started", outcome: undefined, ms: undefined }, undefined);
    both({ ...shared, event: "completed", outcome: i === 25 ? ({ nested: true } as never) : "success", ms: i < 10 ? 1.5 : i / 7 }, "request");
  }
  // A line longer than a chunk goes out on its own, the same line.
  const huge = { event: "huge", pad: "é".repeat(LOG_SOLE_WRITE_BYTES) };
  writeFlat(log, "info", huge, "big");
  flatLogger(log).info(huge, "big");
  pairs++;
  await flushLog(log);
  logWriterOf(log)!.close();
  const lines = (await fs.readFile(file, "utf8")).split("\n");
  assert.equal(lines.pop(), "", "the file ends with a whole line");
  assert.equal(lines.length, 2 * pairs);
  const untimed = (l: string) => l.replace(/"time":"[^"]*"/, '"time":"T"');
  // The one intended difference: a lone surrogate is escaped, where pino's line carries it raw
  // (and the file then holds U+FFFD in its place).
  const lone = (l: string) => l.replace('"a\\ud800b"', '"a\ufffdb"');
  // Each line's time lies between those of the lines written before and after it (pino's line
  // of the same object comes right after): no line carries a time kept from an earlier one.
  const timeOf = (l: string) => Date.parse(/"time":"([^"]*)"/.exec(l)![1]!);
  for (let i = 0; i < lines.length; i += 2) {
    assert.equal(lone(untimed(lines[i]!)), untimed(lines[i + 1]!), `pair ${i / 2}`);
    JSON.parse(lines[i]!);
    const t = timeOf(lines[i]!);
    assert.ok(t <= timeOf(lines[i + 1]!) && (i === 0 || t >= timeOf(lines[i - 1]!)), `time of pair ${i / 2}`);
  }
  await fs.rm(dir, { recursive: true, force: true });
});

type Flat = Record<string, string | number | boolean | undefined>;

/** A small seeded generator, so a failing sequence can be run again. */
function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

test("with a shape, writeFlat writes the same line as without, byte for byte, whatever the values do", async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "tollgate-shape-"));
  const file = path.join(dir, "out.log");
  const log = createLogger({ file, level: "info" });
  const child = log.child({ worker: 2 });
  const keys = ["kind", "route", "user", "id", "token", "text", "absent", "status", "ms", "flag"];
  const shape = new FlatShape<Flat>(keys, (o, out) => keys.forEach((k, i) => (out[i] = o[k])), 2);
  const random = seeded(Number(process.env.TOLLGATE_TEST_SEED ?? 20261205));
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)]!;
  const texts = ["plain", 'say "hi" \\ there', "héllo ✓ 😀", "line\nbreak", "x".repeat(300), "a\ud800b"];
  const lines: Array<{ at: number | undefined }> = [];
  /** Writes `o` with the shape, then pino's line for it. */
  const both = (l: typeof log, level: "info" | "warn", o: Flat, msg: string | undefined, at?: number) => {
    writeFlat(l, level, o, msg, at, shape);
    const censored = censorFlat(o);
    if (msg === undefined) flatLogger(l)[level](censored);
    else flatLogger(l)[level](censored, msg);
    lines.push({ at });
  };
  // Phases: how often each field changes, from never to every line, so fields become steady,
  // change while copied, come back, and flip between values, in every combination.
  let bytes = 0;
  for (let phase = 0; bytes < 4 * LOG_SOLE_WRITE_BYTES; phase++) {
    const change = Array.from(keys, () => pick([0, 0, 0.02, 0.1, 0.5, 1]));
    const routes = phase % 4 === 3 ? 12 : 1 + (phase % 3); // more routes than ways, sometimes
    const current: Flat = { kind: "accepted", route: "r0", user: "alice", id: "req-0", token: "t", text: "plain", absent: undefined, status: 200, ms: 1.5, flag: true };
    for (let n = 0; n < 60; n++) {
      const kind = n % 2 === 0 ? "accepted" : "completed";
      const o: Flat = { ...current, kind, route: `r${Math.floor(random() * routes)}` };
      if (random() < change[2]!) o.user = pick(["alice", "bob", "carol", "d\u00e9"]);
      if (random() < change[3]!) o.id = `req-${phase}-${n}`;
      if (random() < change[4]!) o.token = pick(["t", "u"]);
      if (random() < change[5]!) o.text = pick(texts);
      if (random() < change[6]!) o.absent = pick([undefined, undefined, "present", 0]);
      if (random() < change[7]!) o.status = pick([200, 200, 404, "200", Number.NaN, -0, 0]);
      if (random() < change[8]!) o.ms = pick([1.5, 0.25, 12, 1 / 3, Number.POSITIVE_INFINITY, -4.75]);
      if (random() < change[9]!) o.flag = pick([true, false, undefined]);
      Object.assign(current, o);
      const msg = kind === "accepted" ? "request" : phase % 5 === 4 ? pick([undefined, "other", 'quoted "msg"']) : undefined;
      const l = phase % 6 === 5 && random() < 0.5 ? child : log;
      const level = phase % 7 === 6 && random() < 0.3 ? "warn" : "info";
      // Some lines written after the fact, in another second than now.
      const at = phase % 3 === 1 ? Date.now() - 1000 * Math.floor(random() * 5) - random() * 1000 : undefined;
      both(l, level, o, msg, at);
      bytes += 2 * JSON.stringify(o).length;
    }
    // A value that is not a scalar, at a place that was steady: the line is pino's.
    both(log, "info", { ...current, text: { nested: true } as never }, "request");
    both(log, "info", { ...current, id: [1, 2] as never }, undefined);
  }
  // A line longer than a chunk goes out on its own, the same line.
  both(log, "info", { kind: "accepted", route: "r0", text: "é".repeat(LOG_SOLE_WRITE_BYTES) }, "big");
  await flushLog(log);
  logWriterOf(log)!.close();
  const out = (await fs.readFile(file, "utf8")).split("\n");
  assert.equal(out.pop(), "", "the file ends with a whole line");
  assert.equal(out.length, 2 * lines.length);
  const untimed = (l: string) => l.replace(/"time":"[^"]*"/, '"time":"T"');
  const lone = (l: string) => l.replace('"a\\ud800b"', '"a\ufffdb"');
  for (let i = 0; i < out.length; i += 2) {
    const mine = out[i]!;
    assert.equal(lone(untimed(mine)), untimed(out[i + 1]!), `pair ${i / 2}`);
    JSON.parse(mine);
    const at = lines[i / 2]!.at;
    const time = /"time":"([^"]*)"/.exec(mine)![1]!;
    if (at !== undefined) assert.equal(time, new Date(Math.floor(at)).toISOString(), `time of pair ${i / 2}`);
    else assert.ok(Date.parse(time) <= Date.parse(/"time":"([^"]*)"/.exec(out[i + 1]!)![1]!), `time of pair ${i / 2}`);
  }
  await fs.rm(dir, { recursive: true, force: true });
});

test("flatNumber writes what String writes, hundredths included", () => {
  const values = [0, -0, 1, -1, 0.5, 0.05, 0.1, 0.25, 1.2, 1.23, 12.3, 99.99, 100.01, 0.1 + 0.2, 1 / 3, -1.25, 1e-7, 1e21, 2 ** 53, 9999999999999.99, 1e13 + 0.5, Number.MAX_VALUE, Number.MIN_VALUE];
  for (let i = 0; i < 20000; i++) {
    values.push(Math.round(Math.random() * 10 ** (1 + (i % 12))) / 100);
    values.push(Math.random() * 10 ** (i % 8));
  }
  for (const v of values) assert.equal(flatNumber(v), String(v), `for ${v}`);
  for (const v of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) assert.equal(flatNumber(v), "null");
});

test("flatString writes what JSON.stringify writes", () => {
  const samples = ["", "plain", "tools/call", "with space", 'quote"', "back\\slash", "nl\n", "\u0000", "\u001f", "\u007f", "é ✓", "😀", "\ud800", "a\udc00b", "\u2028"];
  const alphabet = ["a", "Z", "0", " ", '"', "\\", "\n", "\t", "\u0001", "é", "\u2028", "\ud83d", "\ude00", "😀", "/"];
  for (let i = 0; i < 5000; i++) {
    let s = "";
    for (let j = i % 12; j > 0; j--) s += alphabet[Math.floor(Math.random() * alphabet.length)];
    samples.push(s);
  }
  for (const s of samples) assert.equal(flatString(s), JSON.stringify(s), `for ${JSON.stringify(s)}`);
});

test("the cached timestamp is pino's ISO time field, renewed every millisecond", async () => {
  const a = isoTimestamp();
  assert.match(a, /^,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$/);
  assert.ok(Math.abs(Date.parse(a.slice(9, -1)) - Date.now()) < 1000);
  await new Promise((r) => setTimeout(r, 5));
  assert.notEqual(isoTimestamp(), a);
});

test("the cached timestamp equals Date#toISOString at every millisecond, across second, day and year boundaries", () => {
  const times = [Date.UTC(2026, 11, 31, 23, 59, 59, 998), Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1, 0, 0, 0, 0), Date.UTC(2027, 0, 1, 0, 0, 0, 7), Date.UTC(2027, 0, 1, 0, 0, 1, 42), Date.UTC(2027, 0, 1, 0, 0, 0, 500)];
  mock.timers.enable({ apis: ["Date"], now: times[0] });
  try {
    for (const t of times) {
      mock.timers.setTime(t);
      assert.equal(Date.now(), t);
      assert.equal(isoTimestamp(), `,"time":"${new Date(t).toISOString()}"`);
    }
  } finally {
    mock.timers.reset();
  }
});
