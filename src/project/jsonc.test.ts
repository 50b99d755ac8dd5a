import { test } from "node:test";
import assert from "node:assert/strict";
import { lineColumn, parseJsonc } from "./jsonc.js";

test("comments and trailing commas are accepted", () => {
  const text = `{
    // line comment
    "a": [1, 2, 3,], /* block */
    "b": { "c": true, },
  }`;
  const r = parseJsonc(text, "config/policies.json");
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.value, { a: [1, 2, 3], b: { c: true } });
});

test("syntax errors carry file, line and column", () => {
  const text = `{\n  "a": 1\n  "b": 2\n}`;
  const r = parseJsonc(text, "zuplo.jsonc");
  assert.equal(r.value, undefined);
  assert.equal(r.issues.length, 1);
  assert.deepEqual(r.issues[0], { file: "zuplo.jsonc", path: "", message: "line 3, column 3: ',' expected" });
});

test("every syntax error is reported", () => {
  const r = parseJsonc(`{ "a": , "b": }`, "f.json");
  assert.ok(r.issues.length >= 2, JSON.stringify(r.issues));
  assert.ok(r.issues.every((i) => /^line 1, column \d+: value expected$/.test(i.message)));
});

test("lineColumn counts from 1", () => {
  assert.deepEqual(lineColumn("ab\ncd", 0), { line: 1, column: 1 });
  assert.deepEqual(lineColumn("ab\ncd", 4), { line: 2, column: 2 });
});
