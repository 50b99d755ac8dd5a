import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { findForbiddenEnv, loadEnv, missingVarHint, resolveEnvRefs } from "./env.js";

const FILE = "config/policies.json";

test("a whole-string $env becomes the value, or undefined when unset", () => {
  const r = resolveEnvRefs({ secret: "$env(SECRET)", missing: "$env(MISSING)", list: ["$env(SECRET)"] }, { SECRET: "s3" }, FILE, ["o"]);
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.value, { secret: "s3", list: ["s3"] });
  assert.ok(!("missing" in (r.value as object)));
  assert.equal(r.unset.get("missing"), "MISSING");
});

test("an embedded $env is interpolated; unset becomes empty", () => {
  const r = resolveEnvRefs({ h: "Bearer $env(TOKEN)", u: "x-$env(NOPE)-y", n: 5, b: true }, { TOKEN: "abc" }, FILE, []);
  assert.deepEqual(r.value, { h: "Bearer abc", u: "x--y", n: 5, b: true });
  assert.equal(r.unset.size, 0);
});

test("the whole-string form keeps non-string-looking values as strings", () => {
  const r = resolveEnvRefs({ v: "$env(PORT)" }, { PORT: "8080" }, FILE, []);
  assert.deepEqual(r.value, { v: "8080" });
});

test("malformed references and $env in keys are errors with paths", () => {
  const r = resolveEnvRefs({ a: "$env(1BAD)", b: { "$env(K)": 1 }, c: "$env(OK" }, {}, FILE, ["policies", 0, "handler", "options"]);
  const paths = r.issues.map((i) => i.path).sort();
  assert.deepEqual(paths, [
    "policies[0].handler.options.a",
    'policies[0].handler.options.b["$env(K)"]',
    "policies[0].handler.options.c",
  ]);
});

test("$env outside options is reported at its path", () => {
  const doc = {
    policies: [
      { name: "$env(N)", handler: { module: "$import(./m)", export: "x", options: { ok: "$env(FINE)" } } },
      { name: "p", handler: { module: "$import(./modules/$env(M))", export: "x" } },
    ],
  };
  const allowed = (s: readonly (string | number)[]) => s.at(-1) === "options" && s.at(-2) === "handler";
  const issues = findForbiddenEnv(doc, FILE, allowed);
  assert.deepEqual(
    issues.map((i) => i.path),
    ["policies[0].name", "policies[1].handler.module"],
  );
  assert.match(issues[0]!.message, /only allowed inside handler and policy options/);
});

test(".env is loaded and the process environment wins", async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "tollgate-env-"));
  try {
    await fs.writeFile(path.join(dir, ".env"), "# comment\nA=from-file\nB=\"quoted value\"\nexport C=3\n");
    const { env, issues } = await loadEnv(dir, { A: "from-process", D: "d" });
    assert.deepEqual(issues, []);
    assert.equal(env.A, "from-process");
    assert.equal(env.B, "quoted value");
    assert.equal(env.C, "3");
    assert.equal(env.D, "d");
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a missing .env is fine", async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "tollgate-env-"));
  try {
    const { env, issues } = await loadEnv(dir, { X: "1" });
    assert.deepEqual(issues, []);
    assert.deepEqual(env, { X: "1" });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("missing variables are recorded where they are referenced, whole or embedded, unset or empty", () => {
  const r = resolveEnvRefs(
    { a: "$env(UNSET)", b: { c: "x-$env(EMPTY)-$env(SET)" }, d: ["$env(SET)"] },
    { EMPTY: "", SET: "v" },
    "f",
    ["options"],
  );
  assert.deepEqual(r.missing, [
    { at: ["a"], name: "UNSET", empty: false },
    { at: ["b", "c"], name: "EMPTY", empty: true },
  ]);
  assert.equal(missingVarHint(r.missing, ["a"]), " (environment variable UNSET is not set)");
  assert.equal(missingVarHint(r.missing, ["b"]), " (environment variable EMPTY is empty)");
  assert.equal(missingVarHint(r.missing, []), " (environment variable UNSET is not set; environment variable EMPTY is empty)");
  assert.equal(missingVarHint(r.missing, ["d", 0]), "");
  assert.equal(missingVarHint(r.missing, ["b", "other"]), "");
});
