import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { formatPath, formatZodIssue, zodIssuePath } from "./issues.js";

test("formatPath uses dots for identifiers and brackets otherwise", () => {
  assert.equal(formatPath(["policies", 2, "handler", "options", "authMode"]), "policies[2].handler.options.authMode");
  assert.equal(formatPath(["paths", "/mcp/{id}", "get,post", "x-zuplo-route"]), 'paths["/mcp/{id}"]["get,post"]["x-zuplo-route"]');
  assert.equal(formatPath([]), "");
});

const schema = z.object({
  authMode: z.enum(["user-oauth", "shared-oauth"]),
  scopes: z.array(z.string()).optional(),
  n: z.number().int().min(1).optional(),
  nested: z.strictObject({ a: z.string() }).optional(),
});

function issuesFor(raw: unknown): string[] {
  const r = schema.safeParse(raw);
  assert.equal(r.success, false);
  return r.error!.issues.map((i) => `${zodIssuePath(["policies", 2, "handler", "options"], i)}: ${formatZodIssue(i, raw)}`);
}

test("enum mismatch names the choices and the value written", () => {
  assert.deepEqual(issuesFor({ authMode: "user" }), [
    'policies[2].handler.options.authMode: expected "user-oauth" | "shared-oauth", got "user"',
  ]);
});

test("type errors and missing values", () => {
  assert.deepEqual(issuesFor({ scopes: "mcp" }).sort(), [
    'policies[2].handler.options.authMode: required (expected "user-oauth" | "shared-oauth")',
    "policies[2].handler.options.scopes: expected array, got string",
  ]);
  assert.deepEqual(issuesFor({ authMode: "user-oauth", scopes: [1] }), [
    "policies[2].handler.options.scopes[0]: expected string, got number",
  ]);
});

test("unknown keys and range errors", () => {
  const lines = issuesFor({ authMode: "user-oauth", n: 0, nested: { a: "x", b: 1 } });
  assert.equal(lines.length, 2);
  assert.ok(lines.includes('policies[2].handler.options.nested: unknown key "b"'), lines.join("\n"));
  assert.ok(lines.some((l) => l.startsWith("policies[2].handler.options.n: ")), lines.join("\n"));
});

test("long values are shortened", () => {
  const [line] = issuesFor({ authMode: "x".repeat(100) });
  assert.ok(line!.length < 160, line);
});

test("a failed union names the problem of the one variant that came closest; a tie stays generic", () => {
  const union = z.object({
    registration: z.union([z.strictObject({ mode: z.literal("auto") }), z.strictObject({ mode: z.literal("manual"), clientId: z.string().min(1) })]),
    prompt: z.union([z.enum(["none", "login"]), z.literal(false)]).optional(),
  });
  const format = (raw: unknown) => {
    const r = union.safeParse(raw);
    assert.equal(r.success, false);
    return r.error!.issues.map((i) => `${zodIssuePath([], i)}: ${formatZodIssue(i, raw)}`);
  };
  assert.deepEqual(format({ registration: { mode: "manual" } }), ["registration: clientId: required (expected string)"]);
  assert.deepEqual(format({ registration: { mode: "auto" }, prompt: "always" }), ['prompt: invalid value "always"']);
});
