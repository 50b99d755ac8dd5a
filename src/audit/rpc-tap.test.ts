import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import type { JsonRpcMessage } from "../mcp/messages.js";
import { RpcTap, tapNodeBody } from "./rpc-tap.js";

function collect(sse: boolean) {
  const messages: JsonRpcMessage[] = [];
  const ends: Array<[boolean, boolean]> = [];
  const tap = new RpcTap(sse, { message: (m) => messages.push(m), end: (c, u) => ends.push([c, u]) });
  return { tap, messages, ends };
}

test("SSE: answers are seen per event, across chunk boundaries and CRLF; notifications are skipped", () => {
  const { tap, messages, ends } = collect(true);
  const text =
    'id: 1\r\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\r\n\r\n' +
    'data: {"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"é"}]}}\n\n' +
    'event: message\ndata: [{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"x"}},\ndata: {"jsonrpc":"2.0","id":3,"result":{}}]\n\n';
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += 7) tap.chunk(bytes.subarray(i, i + 7));
  assert.deepEqual(messages.map((m) => m.id), [1, 2, 3]);
  assert.equal((messages[0]!.result as { content: Array<{ text: string }> }).content[0]!.text, "é");
  tap.finish(true);
  assert.deepEqual(ends, [[true, false]]);
});

test("JSON: a batch answer is parsed once at the end; a cut-off body reports incomplete", () => {
  const a = collect(false);
  a.tap.chunk(Buffer.from('[{"jsonrpc":"2.0","id":"a","result":{}},'));
  a.tap.chunk(Buffer.from('{"jsonrpc":"2.0","id":"b","result":{"isError":true}}]'));
  assert.equal(a.messages.length, 0);
  a.tap.finish(true);
  assert.deepEqual(a.messages.map((m) => m.id), ["a", "b"]);
  const b = collect(false);
  b.tap.chunk(Buffer.from('{"jsonrpc":"2.0","id":1,'));
  b.tap.finish(false);
  assert.deepEqual(b.messages, []);
  assert.deepEqual(b.ends, [[false, false]]);
});

test("tapping a body does not start its flow before the consumer pipes it, and loses nothing", async () => {
  const body = new PassThrough();
  body.write('{"jsonrpc":"2.0","id":7,"result":{}}');
  body.end();
  const { tap, messages, ends } = collect(false);
  tapNodeBody(body, tap);
  await new Promise((r) => setImmediate(r));
  assert.equal(body.readableFlowing, false, "paused until piped");
  const sink = new PassThrough();
  let received = "";
  sink.on("data", (c: Buffer) => (received += c.toString()));
  body.pipe(sink);
  await new Promise((r) => sink.on("end", r));
  assert.equal(received, '{"jsonrpc":"2.0","id":7,"result":{}}');
  assert.deepEqual(messages.map((m) => m.id), [7]);
  assert.deepEqual(ends, [[true, false]]);
});

test("JSON: a body the callback settles from its bytes is not parsed", () => {
  const seen: Buffer[] = [];
  const messages: JsonRpcMessage[] = [];
  const tap = new RpcTap(false, { message: (m) => messages.push(m), end: () => {}, wholeBody: (b) => (seen.push(b), b.includes("skip")) });
  tap.chunk(Buffer.from('{"id":1,"result":{"skip":true}}'));
  tap.finish(true);
  assert.equal(seen.length, 1);
  assert.equal(messages.length, 0, "settled without parsing");
  const other = new RpcTap(false, { message: (m) => messages.push(m), end: () => {}, wholeBody: () => false });
  other.chunk(Buffer.from('{"id":2,"result":{}}'));
  other.finish(true);
  assert.deepEqual(messages.map((m) => m.id), [2], "parsed when the callback cannot tell");
});
