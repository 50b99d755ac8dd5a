import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { mock, test } from "node:test";
import { censorFlat, createLogger, FLAT_TEXT, flatLogger, flatNumber, flatString, isoTimestamp, REDACT_PATHS, writeFlat } from "./log.js";

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

test("writeFlat writes a flat object's prepared text in place of its fields", async () => {
  const out = new PassThrough();
  const raw: string[] = [];
  out.setEncoding("utf8").on("data", (d: string) => raw.push(d));
  const log = createLogger({ destination: out, level: "info" });
  writeFlat(log, "info", { event: "e", a: "x\"y", b: undefined, token: "secret", c: 1.5, d: true }, "m");
  writeFlat(log, "info", { event: "e", [FLAT_TEXT]: ',"prepared":1' } as never, "m");
  await new Promise((r) => setImmediate(r));
  const lines = raw.join("").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 2);
  assert.deepEqual([lines[0]!.a, lines[0]!.token, lines[0]!.c, lines[0]!.d, "b" in lines[0]!], ['x"y', "[redacted]", 1.5, true, false]);
  assert.equal(lines[1]!.prepared, 1, "the prepared text is written");
  assert.equal(lines[1]!.event, undefined, "and the fields are not");
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
