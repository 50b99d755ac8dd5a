import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { endsAtEventBoundary, holdingStream, SseInjector } from "./sse-inject.js";

test("event boundaries: two line terminators of any kind, a single CRLF is one", () => {
  for (const yes of ["x\n\n", "x\r\n\r\n", "x\r\r", "x\n\r\n", "x\r\r\n", "\n\n", "x\r\n\n"]) assert.equal(endsAtEventBoundary(yes), true, JSON.stringify(yes));
  for (const no of ["", "x", "x\n", "x\r\n", "x\r", "data: a\n\ndata: b", "\r\n"]) assert.equal(endsAtEventBoundary(no), false, JSON.stringify(no));
});

async function collect(s: NodeJS.ReadableStream): Promise<string> {
  let out = "";
  for await (const c of s) out += Buffer.from(c as Buffer).toString("utf8");
  return out;
}

test("an injected event goes between the upstream's events, never inside one", async () => {
  const src = new PassThrough();
  const inj = new SseInjector();
  src.pipe(inj);
  const done = collect(inj);
  assert.equal(inj.inject("event: message\ndata: first\n\n"), true, "before any byte: at a boundary");
  src.write("id: 1\ndata: {\"a\":");
  assert.equal(inj.inject("event: message\ndata: mine\n\n"), true);
  src.write("1}\r\n");
  src.write("\r");
  src.write("\n");
  src.write("data: tail\n\n");
  src.end();
  assert.equal(await done, "event: message\ndata: first\n\nid: 1\ndata: {\"a\":1}\r\n\r\nevent: message\ndata: mine\n\ndata: tail\n\n");
  assert.equal(inj.inject("late\n\n"), false, "nothing after the end");
});

test("an event queued when the upstream ends mid-event is dropped, not glued to the remains", async () => {
  const src = new PassThrough();
  const inj = new SseInjector();
  src.pipe(inj);
  const done = collect(inj);
  src.write("data: half");
  inj.inject("data: mine\n\n");
  src.end();
  assert.equal(await done, "data: half");
});

test("a holding stream starts with a comment, carries what it is sent and ends when told", async () => {
  const held = holdingStream(0);
  const done = collect(held.body);
  held.send("data: one\n\n");
  held.end();
  held.send("data: after\n\n");
  assert.equal(await done, ": this session's upstream is not connected yet\n\ndata: one\n\n");
});
