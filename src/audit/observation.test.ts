import assert from "node:assert/strict";
import { test } from "node:test";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { takeWatcher } from "../pipeline/node-body.js";
import { OBSERVED_ANSWER, observedCall } from "../../test/helpers/observed-call.js";
import { createLogger, writeFlat } from "../log.js";
import { AuditEvents } from "./events.js";
import { epochMs, PLAIN_SCAN_MAX_BYTES, plainSuccess, readSmall, REQUEST_EVENT_SHAPE, requestEvent, searchLarge } from "./observation.js";

const ok = '{"result":{"content":[{"type":"text","text":"hello"}]},"jsonrpc":"2.0","id":1}';

/** [body, id, expected, why]: a success read from the bytes only where nothing else could be meant. */
const CASES: Array<[string, number | string | undefined, boolean, string]> = [
  [ok, 1, true, "a plain success"],
  ['{"jsonrpc": "2.0", "id": 1, "result": {}}', 1, true, "spaced"],
  ['{"jsonrpc":"2.0","id":"a-1","result":{}}\n', "a-1", true, "a string id"],
  ['{"jsonrpc":"2.0","id":7,\n"result":{}}', 7, true, "a newline after the id"],
  ['{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":false}}', 1, true, "isError: false"],
  ['{"jsonrpc":"2.0","id":1,"result":{"isError" : false,"x":{"isError":false}}}', 1, true, "every isError false"],
  // Everything else is left to the parser.
  ['{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}', 1, false, "an error"],
  ['{"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[]}}', 1, false, "a tool error"],
  ['{"jsonrpc":"2.0","id":1,"result":{"isError":false,"x":{"isError":1}}}', 1, false, "any other isError"],
  ['{"jsonrpc":"2.0","id":1,"result":{"status":"error"}}', 1, false, 'the string "error" anywhere'],
  ['{"jsonrpc":"2.0","id":1,"\\u0065rror":{"code":1}}', 1, false, "an escape could spell a key"],
  ['{"result":{"t":"a\\\\"},"error":{"code":1},"id":1}', 1, false, "after an escaped backslash the quote is real"],
  ['{"jsonrpc":"2.0","id":10,"result":{}}', 1, false, "another id that starts alike"],
  ['{"jsonrpc":"2.0","id":"1","result":{}}', 1, false, "a string id for a number id"],
  ['{"jsonrpc":"2.0","id":1}', 1, false, "no result"],
  ['{"jsonrpc":"2.0","id":"é","result":{}}', "é", false, "an id that is not plain ASCII"],
  [ok, undefined, false, "a call without an id"],
];

test("plainSuccess: short answers (one pass) and long ones (native searches) decide alike", () => {
  for (const [text, id, expected, why] of CASES) {
    assert.equal(plainSuccess(Buffer.from(text), id), expected, `${why}: ${text}`);
    if (id === undefined || id === "é") continue;
    const idText = JSON.stringify(id);
    assert.equal(readSmall(Buffer.from(text), idText), expected, `one pass, ${why}`);
    assert.equal(searchLarge(Buffer.from(text), idText), expected, `searches, ${why}`);
    // The same answer made long, so plainSuccess takes the searches.
    const padded = text.replace(/}$/, `,"pad":"${"x".repeat(4000)}"}`);
    assert.equal(plainSuccess(Buffer.from(padded), id), expected, `long, ${why}`);
  }
});

test("plainSuccess: an escaped quote in a text is not a key; the searches are stricter about it", () => {
  const text = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"no \\"error\\" here"}]}}';
  assert.equal(readSmall(Buffer.from(text), "1"), true, "`\\\"error\\\"` is text, not the key \"error\"");
  assert.equal(searchLarge(Buffer.from(text), "1"), true, "the bytes hold no quote-error-quote either");
  const quoted = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"x\\"error"}]}}';
  assert.equal(readSmall(Buffer.from(quoted), "1"), true);
  assert.equal(searchLarge(Buffer.from(quoted), "1"), false, "parsed instead: still never a wrong success");
});

test("plainSuccess: beyond the bound an answer is parsed", () => {
  const long = `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"${"x".repeat(PLAIN_SCAN_MAX_BYTES)}"}]}}`;
  assert.equal(plainSuccess(Buffer.from(long), 1), false);
});

/** A logger at `info` whose lines are collected in `raw` (they arrive a tick after each write). */
function capturedLog() {
  const out = new PassThrough();
  const raw: string[] = [];
  out.setEncoding("utf8").on("data", (d: string) => raw.push(d));
  return { log: createLogger({ destination: out, level: "info" }), raw };
}

test("the request events' line shape reads their keys in their order", () => {
  const base = { operationId: "r", upstreamServerId: "u", subjectId: "alice", clientName: "c", httpMethod: "POST", requestId: "id-1", traceId: "t", spanId: "s", path: "/mcp" };
  const e = requestEvent(AuditEvents.requestAccepted, base, "tools/call", "echo", { outcome: "failure", reasonCode: "x", failureOrigin: "upstream", errorCode: -1 }, 200, 1, 2, 3);
  assert.deepEqual(REQUEST_EVENT_SHAPE.keys, Object.keys(e));
  const values: unknown[] = [];
  (REQUEST_EVENT_SHAPE as unknown as { read(o: unknown, out: unknown[]): void }).read(e, values);
  assert.deepEqual(values, Object.values(e));
  assert.equal(new Set(values).size, values.length, "every field has a value of its own here, so a swapped pair would show");
});

test("an event's line is what writeFlat writes for its fields", async () => {
  const { log, raw } = capturedLog();
  const bases = [
    { operationId: "r", upstreamServerId: "u", subjectId: "alice", clientName: "Claude \"Code\" é", httpMethod: "POST", requestId: "id-1", traceId: "t", spanId: "s", path: "/mcp" },
    { operationId: "r", upstreamServerId: "u", subjectId: undefined, clientName: undefined, httpMethod: "GET", requestId: "id-2", traceId: undefined, spanId: undefined, path: "/a\u0001b" },
  ];
  const verdicts = [undefined, { outcome: "success" as const }, { outcome: "failure" as const, reasonCode: "jsonrpc_error", failureOrigin: "upstream" as const, errorCode: -32000 }];
  let n = 0;
  for (const b of bases) {
    for (const v of verdicts) {
      for (const [method, name, status, ms] of [["tools/call", "echo\n", 200, 1.25], [undefined, undefined, undefined, undefined], ["batch", undefined, 502, 0.1 + 0.2]] as const) {
        const e = requestEvent(AuditEvents.capabilityCompleted, { ...b }, method, name, v, status, ms, ms === undefined ? undefined : 3, ms);
        const fields: Record<string, unknown> = {};
        for (const k in e) fields[k] = (e as Record<string, unknown>)[k];
        writeFlat(log, "info", e as never, "request");
        writeFlat(log, "info", fields as never, "request");
        n++;
      }
    }
  }
  await new Promise((r) => setImmediate(r));
  const lines = raw.join("").split("\n").filter(Boolean).map((l) => l.replace(/"time":"[^"]*"/, '"time":"T"'));
  assert.equal(lines.length, 2 * n);
  for (let i = 0; i < lines.length; i += 2) assert.equal(lines[i], lines[i + 1]);
});

const OBSERVED_CALL_SCRIPT = fileURLToPath(new URL("../../test/helpers/observed-call.ts", import.meta.url));

/** The events among collected log text. */
const eventsOf = (raw: string[]) =>
  raw
    .join("")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const completions = (raw: string[]) => eventsOf(raw).filter((e) => e.event === AuditEvents.capabilityCompleted);

test("an upstream answer is looked at after the request's own work, with the times of when things happened", async () => {
  const { log, raw } = capturedLog();
  const started = performance.now();
  const { upstreamBody } = observedCall(log, started);
  // The edge hands the answer over whole, then goes on with other requests' work in the same turn.
  takeWatcher(upstreamBody)!.whole(Buffer.from(OBSERVED_ANSWER));
  const cameAt = performance.now() - started;
  const cameWall = Date.now();
  const busyUntil = performance.now() + 60;
  while (performance.now() < busyUntil);
  const until = Date.now() + 5_000;
  while (completions(raw).length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  const [done, ...more] = completions(raw);
  assert.equal(more.length, 0);
  assert.equal(done?.outcome, "success");
  assert.equal(done?.capabilityName, "echo");
  // Timed when the answer came, not when the queue ran (60 ms later at least).
  assert.ok((done!.latencyMs as number) <= cameAt + 1, `latencyMs ${String(done!.latencyMs)} for an answer that came after ${cameAt.toFixed(2)} ms`);
  // And so is its line.
  assert.ok(Date.parse(done!.time as string) <= cameWall + 5, `line time ${String(done!.time)}, answer at ${new Date(cameWall).toISOString()}`);
});

test("an event emitted as it happens first writes the events of requests answered before it", () => {
  const { log, raw } = capturedLog();
  const { upstreamBody, audit } = observedCall(log, performance.now());
  takeWatcher(upstreamBody)!.whole(Buffer.from(OBSERVED_ANSWER));
  audit.emit({ event: AuditEvents.upstreamConnectionEstablished, subjectId: "alice", upstreamServerId: "notes" });
  // pino writes to a stream destination synchronously; its data events come in the next ticks.
  return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
    const order = eventsOf(raw).map((e) => e.event);
    assert.deepEqual(order, [AuditEvents.capabilityCompleted, AuditEvents.requestAccepted, AuditEvents.upstreamConnectionEstablished]);
  });
});

test("a process that exits in the turn of a request still writes that request's events", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-obs-exit-"));
  const file = path.join(dir, "log.jsonl");
  try {
    execFileSync(process.execPath, ["--import", "tsx", OBSERVED_CALL_SCRIPT, file]);
    const lines = fs.readFileSync(file, "utf8");
    const [done] = completions([lines]);
    assert.equal(done?.outcome, "success");
    assert.match(lines, /"event":"mcp_request_accepted"/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("epochMs: a monotonic time as wall-clock ms, the clocks' offset read again once a time is more than a second from the last reading", (t) => {
  // A time far from any earlier reading (other tests' lines) makes the reading now.
  epochMs(performance.now() - 10_000);
  const now = performance.now();
  const first = epochMs(now);
  assert.ok(Math.abs(first - Date.now()) < 50, `${first} is within 50 ms of ${Date.now()}`);
  assert.ok(Math.abs(epochMs(now - 200) - (first - 200)) < 1e-6, "a time 200 ms earlier uses the same offset");
  // The wall clock is set a minute ahead: times near the last reading keep the old offset...
  const wall = Date.now;
  t.mock.method(Date, "now", () => wall() + 60_000);
  assert.ok(Math.abs(epochMs(now + 500) - (first + 500)) < 1e-6, "within a second of the reading, the old offset");
  // ...and a time more than a second away reads the clocks again and shows the step.
  const later = epochMs(now + 1500);
  assert.ok(Math.abs(later - (first + 1500 + 60_000)) < 50, `${later} shows the wall clock's step`);
  // The new offset then holds for times within a second of that reading, before it or after.
  const offset = later - (now + 1500);
  const read = performance.now();
  for (const at of [read - 900, read + 900]) assert.ok(Math.abs(epochMs(at) - at - offset) < 1e-6, `${at}: the offset of the last reading`);
});
