import assert from "node:assert/strict";
import { once } from "node:events";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { AT_START, atEventBoundary, holdingStream, nextBoundaryState, SseRelay } from "./sse-inject.js";

/** The boundary state after `chunks`, fed one by one from the start of a stream. */
const after = (...chunks: string[]) => chunks.reduce((state, c) => nextBoundaryState(state, Buffer.from(c, "latin1")), AT_START);

test("event boundaries: two line terminators of any kind, a single CRLF is one", () => {
  for (const yes of ["x\n\n", "x\r\n\r\n", "x\n\r\n", "x\r\r\n", "\n\n", "x\r\n\n", "data: a\nid: 1\n\n"]) assert.equal(atEventBoundary(after(yes)), true, JSON.stringify(yes));
  for (const no of ["x", "x\n", "x\r\n", "x\r", "data: a\n\ndata: b"]) assert.equal(atEventBoundary(after(no)), false, JSON.stringify(no));
  assert.equal(atEventBoundary(after()), true, "before the first byte");
  assert.equal(atEventBoundary(after("")), true, "an empty chunk changes nothing");
  // Blank lines before any event begin no event.
  assert.equal(atEventBoundary(after("\r\n")), true);
  assert.equal(atEventBoundary(after("\n")), true);
  // A trailing CR may be the first half of a CRLF: wait for the next byte.
  assert.equal(atEventBoundary(after("x\r\r")), false);
  assert.equal(atEventBoundary(after("x\r\r", "\n")), true);
  assert.equal(atEventBoundary(after("x\r\r", "d")), false);
});

test("event boundaries split across chunks: LF, CRLF, CR", () => {
  const cases: Array<[string[], boolean]> = [
    [["data: a\n", "\n"], true],
    [["data: a", "\n", "\n"], true],
    [["data: a", "\n\n"], true],
    [["data: a\r\n", "\r\n"], true],
    [["data: a\r", "\n\r\n"], true],
    [["data: a\r", "\n", "\r", "\n"], true],
    [["data: a\r", "\n"], false], // one CRLF, split: one terminator, not two
    [["data: a\r", "\n", "\n"], true],
    [["data: a\r", "\n\n"], true],
    [["data: a\r\n", "\r"], false], // waits: the CR may start a CRLF
    [["data: a\n", "\r"], false],
    [["data: a\n", "\r", "\n"], true],
    [["data: a\n", "\r", "x"], false], // a CR then another byte: a blank line, but the next event has begun
    [["data: a\n\n", "data: b"], false],
    [["data: a\n\n", "data: b\n"], false],
    [["\n", "\n"], true],
    [["data: a\n", "", "\n"], true],
  ];
  for (const [chunks, boundary] of cases) assert.equal(atEventBoundary(after(...chunks)), boundary, JSON.stringify(chunks));
});

test("the boundary state reads only the end of a chunk", () => {
  const big = Buffer.alloc(1 << 20, "x");
  big.write("\n\n", big.length - 2, "latin1");
  assert.equal(atEventBoundary(nextBoundaryState(AT_START, big)), true);
  big[big.length - 1] = 0x78;
  assert.equal(atEventBoundary(nextBoundaryState(AT_START, big)), false);
});

async function collect(s: NodeJS.ReadableStream): Promise<string> {
  let out = "";
  for await (const c of s) out += Buffer.from(c as Buffer).toString("utf8");
  return out;
}

const tick = () => new Promise((r) => setImmediate(r));

test("an injected event goes between the upstream's events, never inside one", async () => {
  const src = new PassThrough();
  const relay = new SseRelay(src);
  const done = collect(relay);
  assert.equal(relay.inject("event: message\ndata: first\n\n"), true, "before any byte: at a boundary");
  src.write("id: 1\ndata: {\"a\":");
  await tick();
  assert.equal(relay.inject("event: message\ndata: mine\n\n"), true);
  assert.equal(relay.inject("event: message\ndata: mine too\n\n"), true);
  src.write("1}\r\n");
  await tick();
  src.write("\r");
  await tick();
  src.write("\n");
  await tick();
  src.write("data: tail\n\n");
  src.end();
  assert.equal(
    await done,
    "event: message\ndata: first\n\nid: 1\ndata: {\"a\":1}\r\n\r\nevent: message\ndata: mine\n\nevent: message\ndata: mine too\n\ndata: tail\n\n",
  );
  assert.equal(relay.inject("late\n\n"), false, "nothing after the end");
});

test("an event injected at a boundary goes out at once, also while the upstream is silent", async () => {
  const src = new PassThrough();
  const relay = new SseRelay(src);
  let out = "";
  relay.on("data", (c: Buffer) => (out += c.toString("utf8")));
  src.write(": comment\r\n\r\n");
  await tick();
  relay.inject("data: mine\n\n");
  await tick();
  assert.equal(out, ": comment\r\n\r\ndata: mine\n\n");
  relay.destroy();
  await once(relay, "close");
  assert.equal(src.destroyed, true, "the client going away destroys the upstream body");
});

test("an event queued when the upstream ends mid-event is dropped, not glued to the remains", async () => {
  const src = new PassThrough();
  const relay = new SseRelay(src);
  const done = collect(relay);
  src.write("data: half");
  await tick();
  relay.inject("data: mine\n\n");
  src.end();
  assert.equal(await done, "data: half");
});

test("an upstream idle timeout ends the stream; another upstream failure breaks it", async () => {
  const quiet = new PassThrough();
  const ended = new SseRelay(quiet);
  const done = collect(ended);
  quiet.write("data: a\n\n");
  await tick();
  quiet.destroy(Object.assign(new Error("Body Timeout Error"), { code: "UND_ERR_BODY_TIMEOUT" }));
  assert.equal(await done, "data: a\n\n");

  const failing = new PassThrough();
  const broken = new SseRelay(failing);
  const closed = collect(broken).then(
    () => undefined,
    (err: Error) => err,
  );
  failing.destroy(new Error("socket hang up"));
  assert.equal((await closed)?.message, "socket hang up");
});

test("the relay reads the upstream no faster than the client reads it", async () => {
  const src = new PassThrough({ highWaterMark: 16 });
  const relay = new SseRelay(src);
  await tick();
  let accepted = 0;
  while (src.write(Buffer.alloc(8, "x"))) accepted++;
  await tick();
  assert.ok(accepted < 10, "the upstream body fills up while nobody reads");
  assert.equal(src.isPaused(), true);
  const done = collect(relay);
  src.end();
  assert.equal((await done).length, (accepted + 1) * 8);
});

test("onClose runs once, when the stream is over", async () => {
  const src = new PassThrough();
  const relay = new SseRelay(src);
  let calls = 0;
  relay.onClose = () => calls++;
  const done = collect(relay);
  src.end("data: a\n\n");
  await done;
  await tick();
  assert.equal(calls, 1);
  relay.destroy();
  assert.equal(calls, 1);
});

test("a holding stream starts with a comment, carries what it is sent and ends when told", async () => {
  const held = holdingStream(0);
  const done = collect(held.body);
  held.send("data: one\n\n");
  held.end();
  held.send("data: after\n\n");
  assert.equal(await done, ": this session's upstream is not connected yet\n\ndata: one\n\n");
});
