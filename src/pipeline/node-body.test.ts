import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { nodeStreamResponse, untouchedNodeBody } from "./node-body.js";

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
