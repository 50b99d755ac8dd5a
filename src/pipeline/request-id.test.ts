import assert from "node:assert/strict";
import { test } from "node:test";
import { newRequestId } from "./request-id.js";

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("request ids are version 4 UUIDs, all different, across many refills of the random pool", () => {
  const seen = new Set<string>();
  const nibbles = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const id = newRequestId();
    assert.match(id, V4);
    seen.add(id);
    for (const c of id.slice(0, 8)) nibbles.add(c);
  }
  assert.equal(seen.size, 5000);
  assert.equal(nibbles.size, 16, "every hex digit turns up in the random part");
});

test("a request id is a string of its own (the scratch buffer is not shared with it)", () => {
  const a = newRequestId();
  const copy = `${a}`;
  newRequestId();
  assert.equal(a, copy);
});
