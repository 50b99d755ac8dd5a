import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { holdWatcher, nodeStreamResponse, takeWatcher, untouchedNodeBody, type HeldWatcher } from "./node-body.js";

const body = () => Readable.from([Buffer.from('{"a":'), Buffer.from("1}")]);

test("an untouched response hands its Node stream to the adapter", () => {
  const stream = body();
  const res = nodeStreamResponse(stream, { status: 201, headers: { "content-type": "application/json" } });
  assert.equal(res.status, 201);
  assert.equal(res.headers.get("content-type"), "application/json");
  assert.equal(res.bodyUsed, false);
  assert.equal(untouchedNodeBody(res), stream);
});

test("reading the body the web way works and turns the fast path off", async () => {
  const res = nodeStreamResponse(body(), { status: 200 });
  assert.deepEqual(await res.json(), { a: 1 });
  assert.equal(res.bodyUsed, true);
  assert.equal(untouchedNodeBody(res), undefined);
  await assert.rejects(() => res.text(), TypeError);
});

test("asking for `body` alone turns the fast path off (someone may read it later)", async () => {
  const res = nodeStreamResponse(body(), { status: 200 });
  const web = res.body;
  assert.ok(web);
  assert.equal(untouchedNodeBody(res), undefined);
  assert.equal(await new Response(web).text(), '{"a":1}');
});

test("clone gives two readable copies", async () => {
  const res = nodeStreamResponse(body(), { status: 200, headers: { "x-a": "1" } });
  const copy = res.clone();
  assert.equal(copy.headers.get("x-a"), "1");
  assert.equal(await copy.text(), '{"a":1}');
  assert.equal(await res.text(), '{"a":1}');
});

test("cancelling the web body destroys the Node stream", async () => {
  const stream = body();
  const res = nodeStreamResponse(stream, { status: 200 });
  await res.body!.cancel(new Error("client gone"));
  assert.equal(stream.destroyed, true);
});

test("a held watcher starts listening before the body is first read the web way, and is handed over once", async () => {
  const calls: string[] = [];
  const watcher: HeldWatcher = {
    attach(stream) {
      calls.push("attach");
      stream.on("data", (c: Buffer) => calls.push(`data ${c.toString()}`));
    },
    whole: (bytes) => void calls.push(`whole ${bytes?.toString()}`),
  };
  const stream = body();
  holdWatcher(stream, watcher);
  const res = nodeStreamResponse(stream, { status: 200 });
  assert.equal(await res.text(), '{"a":1}');
  assert.deepEqual(calls, ["attach", 'data {"a":', "data 1}"]);
  assert.equal(takeWatcher(stream), undefined, "attached: no longer held");

  const other = body();
  holdWatcher(other, watcher);
  assert.equal(takeWatcher(other), watcher);
  assert.equal(takeWatcher(other), undefined, "taken once");
});
