import { test } from "node:test";
import assert from "node:assert/strict";
import { checkPolicies, checkRoutes, checkZuplo } from "./files.js";

const route = (extra: Record<string, unknown> = {}) => ({
  handler: { module: "$import(./modules/h)", export: "h" },
  ...extra,
});

test("comma-joined method keys declare several methods", () => {
  const r = checkRoutes({
    openapi: "3.1.0",
    paths: {
      "/mcp/linear-v1": { "get,post": { operationId: "linear", "x-zuplo-route": route() } },
      "/x": { " PUT , delete ": { operationId: "x", "x-zuplo-route": route() } },
    },
  });
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.routes.map((x) => [x.path, x.methods]), [
    ["/mcp/linear-v1", ["GET", "POST"]],
    ["/x", ["PUT", "DELETE"]],
  ]);
});

test("path-item fields and extensions are not operations", () => {
  const r = checkRoutes({
    paths: { "/a": { summary: "s", description: "d", parameters: [], "x-ext": 1, get: { operationId: "a", "x-zuplo-route": route() } } },
  });
  assert.deepEqual(r.issues, []);
  assert.equal(r.routes.length, 1);
});

test("unknown method keys, duplicate methods and bad templates are reported", () => {
  const r = checkRoutes({
    paths: {
      "/a": {
        "get,fetch": { operationId: "a", "x-zuplo-route": route() },
        get: { operationId: "b", "x-zuplo-route": route() },
        "get,post": { operationId: "c", "x-zuplo-route": route() },
      },
      "/b/{id-x}": { get: { operationId: "d", "x-zuplo-route": route() } },
      "no-slash": { get: { operationId: "e", "x-zuplo-route": route() } },
    },
  });
  const lines = r.issues.map((i) => `${i.path}: ${i.message}`);
  assert.ok(lines.some((l) => l.startsWith('paths["/a"]["get,fetch"]: unsupported method key: "fetch"')), lines.join("\n"));
  assert.ok(lines.some((l) => l.startsWith('paths["/a"]["get,post"]: GET /a is declared more than once')), lines.join("\n"));
  assert.ok(lines.some((l) => l.startsWith('paths["/b/{id-x}"]: path parameter {id-x}')), lines.join("\n"));
  assert.ok(lines.some((l) => l.startsWith('paths["no-slash"]: a route path must start with /')), lines.join("\n"));
});

test("operationId is required and unique; x-zuplo-route is required", () => {
  const r = checkRoutes({
    paths: {
      "/a": { get: { "x-zuplo-route": route() }, post: { operationId: "same", "x-zuplo-route": route() } },
      "/b": { get: { operationId: "same", "x-zuplo-route": route() }, post: { operationId: "nr" } },
    },
  });
  const lines = r.issues.map((i) => `${i.path}: ${i.message}`);
  assert.deepEqual(lines, [
    'paths["/a"].get.operationId: required: every operation needs a unique operationId',
    'paths["/b"].get.operationId: duplicate operationId "same" (also used at paths["/a"].post)',
    'paths["/b"].post["x-zuplo-route"]: required: every operation needs an x-zuplo-route',
  ]);
});

test("x-zuplo-route shape errors point inside the route", () => {
  const r = checkRoutes({
    paths: { "/a": { get: { operationId: "a", "x-zuplo-route": { handler: { module: 3 }, policies: { inbound: "p" } } } } },
  });
  const lines = r.issues.map((i) => `${i.file}: ${i.path}: ${i.message}`);
  assert.deepEqual(lines.sort(), [
    'config/routes.oas.json: paths["/a"].get["x-zuplo-route"].handler.export: required (expected string)',
    'config/routes.oas.json: paths["/a"].get["x-zuplo-route"].handler.module: expected string, got number',
    'config/routes.oas.json: paths["/a"].get["x-zuplo-route"].policies.inbound: expected array, got string',
  ]);
});

test("openapi must be 3.x when present", () => {
  const r = checkRoutes({ openapi: "2.0", paths: {} });
  assert.equal(r.issues[0]?.path, "openapi");
});

test("policies.json: policies and CORS policies", () => {
  const r = checkPolicies({
    policies: [
      { name: "a", policyType: "set-headers-inbound", handler: { module: "$import(@zuplo/runtime)", export: "X" } },
      { name: "", policyType: "x", handler: { module: "m", export: "e" } },
    ],
    corsPolicies: [{ name: "web", allowedOrigins: "https://a.example, https://b.example" }, { name: "bad" }],
  });
  assert.equal(r.policies.length, 1);
  assert.deepEqual(r.policies[0]!.handler.options, {});
  assert.deepEqual(r.cors[0]!.allowedOrigins, ["https://a.example", "https://b.example"]);
  assert.deepEqual(r.issues.map((i) => i.path).sort(), ["corsPolicies[1].allowedOrigins", "policies[1].name"]);
});

test("zuplo.jsonc needs a compatibilityDate", () => {
  assert.equal(checkZuplo({ version: 1, compatibilityDate: "2026-03-01" }).compatibilityDate, "2026-03-01");
  const bad = checkZuplo({ version: 1 });
  assert.deepEqual(bad.issues.map((i) => `${i.file}: ${i.path}: ${i.message}`), [
    "zuplo.jsonc: compatibilityDate: required (expected string)",
  ]);
  assert.equal(checkZuplo({ compatibilityDate: "March 2026" }).issues[0]?.path, "compatibilityDate");
});
