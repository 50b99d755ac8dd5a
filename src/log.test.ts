import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { censorFlat, createLogger, flatLogger, REDACT_PATHS } from "./log.js";

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
