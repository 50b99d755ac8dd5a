import { test } from "node:test";
import assert from "node:assert/strict";
import type { RawRoute } from "./files.js";
import { checkRules, isMcpOAuthType, upstreamId, type PolicyFacts } from "./rules.js";

function policy(name: string, policyType: string, extra: Partial<PolicyFacts> = {}, index = 0): PolicyFacts {
  return { name, policyType, at: ["policies", index], kind: "inbound", authenticates: false, custom: false, options: {}, ...extra };
}

function route(inbound: string[], extra: Partial<RawRoute> = {}): RawRoute {
  return {
    path: "/mcp",
    methods: ["GET", "POST"],
    operationId: "mcp",
    corsPolicy: undefined,
    handler: { module: "m", export: "e", options: {}, file: "config/routes.oas.json", at: [] },
    inbound,
    outbound: [],
    at: ["paths", "/mcp", "get,post", "x-zuplo-route"],
    ...extra,
  };
}

function run(policies: PolicyFacts[], routes: RawRoute[], cors: Array<{ name: string; index: number }> = []): string[] {
  return checkRules({
    routes,
    policies,
    declaredNames: new Map(policies.map((p) => [p.name, p.at])),
    duplicateNames: [],
    cors: cors.map((c) => ({ ...c, allowedOrigins: [] })),
  }).map((i) => `${i.file}: ${i.path}: ${i.message}`);
}

const AUTH = policy("auth", "mcp-oauth-inbound", { authenticates: true }, 0);
const TX_A = policy("mcp-token-exchange-linear", "mcp-token-exchange-inbound", {}, 1);
const TX_B = policy("mcp-token-exchange-notion", "mcp-token-exchange-inbound", {}, 2);
const ROUTE_AT = 'config/routes.oas.json: paths["/mcp"]["get,post"]["x-zuplo-route"]';

test("a valid chain passes", () => {
  assert.deepEqual(run([AUTH, TX_A], [route(["auth", "mcp-token-exchange-linear"])]), []);
});

test("unknown policy names are reported with the route", () => {
  assert.deepEqual(run([AUTH], [route(["auth", "nope"])]), [
    `${ROUTE_AT}.policies.inbound[1]: unknown policy "nope" on GET,POST /mcp; it is not defined in config/policies.json`,
  ]);
});

test("inbound/outbound kind mismatch", () => {
  const out = policy("log", "custom-code-outbound", { kind: "outbound", custom: true }, 3);
  const lines = run([AUTH, out], [route(["auth", "log"], { outbound: ["auth"] })]);
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.match(lines[0]!, /inbound\[1\]: policy "log" is an outbound policy but is listed as inbound/);
  assert.match(lines[1]!, /outbound\[0\]: policy "auth" is an inbound policy but is listed as outbound/);
});

test("at most one token exchange per route", () => {
  const lines = run([AUTH, TX_A, TX_B], [route(["auth", "mcp-token-exchange-linear", "mcp-token-exchange-notion"])]);
  assert.deepEqual(lines, [
    `${ROUTE_AT}.policies.inbound[2]: only one mcp-token-exchange-inbound policy is allowed per route; GET,POST /mcp also has "mcp-token-exchange-linear"`,
  ]);
});

test("token exchange must come after an authenticating policy", () => {
  assert.match(run([AUTH, TX_A], [route(["mcp-token-exchange-linear", "auth"])])[0]!, /inbound\[0\]: "mcp-token-exchange-linear" must come after an inbound authentication policy/);
  const headers = policy("h", "set-headers-inbound", {}, 3);
  assert.equal(run([headers, TX_A], [route(["h", "mcp-token-exchange-linear"])]).length, 1);
  // Custom code is trusted to authenticate (it may set request.user).
  const custom = policy("c", "custom-code-inbound", { custom: true }, 4);
  assert.deepEqual(run([custom, TX_A], [route(["c", "mcp-token-exchange-linear"])]), []);
});

test("token-exchange upstream ids must be unique", () => {
  assert.equal(upstreamId({ name: "mcp-token-exchange-linear", options: {} }), "linear");
  assert.equal(upstreamId({ name: "linear-tx", options: { id: "lin" } }), "lin");
  const b = { ...TX_B, options: { id: "linear" } };
  assert.deepEqual(run([AUTH, TX_A, b], []), [
    'config/policies.json: policies[2].name: upstream id "linear" is already used by policy "mcp-token-exchange-linear"; set options.id to tell them apart',
  ]);
});

test("only one MCP OAuth policy per project", () => {
  assert.ok(isMcpOAuthType("mcp-oauth-inbound"));
  assert.ok(isMcpOAuthType("mcp-auth0-oauth-inbound"));
  assert.ok(!isMcpOAuthType("mcp-token-exchange-inbound"));
  const second = policy("auth2", "mcp-okta-oauth-inbound", { authenticates: true }, 5);
  assert.deepEqual(run([AUTH, second], []), [
    'config/policies.json: policies[5].policyType: only one MCP OAuth policy (mcp-*-oauth-inbound) may exist per project; "auth" is already one',
  ]);
});

test("corsPolicy must be none, anything-goes or defined", () => {
  const ok = run([], [route([], { corsPolicy: "none" }), route([], { corsPolicy: "anything-goes" }), route([], { corsPolicy: "web" })], [{ name: "web", index: 0 }]);
  assert.deepEqual(ok, []);
  const bad = run([], [route([], { corsPolicy: "webb" })], [{ name: "web", index: 0 }, { name: "none", index: 1 }]);
  assert.deepEqual(bad, [
    'config/policies.json: corsPolicies[1].name: "none" is a built-in CORS policy name and cannot be redefined',
    `${ROUTE_AT}.corsPolicy: unknown CORS policy "webb" on GET,POST /mcp; use none, anything-goes or a name from corsPolicies`,
  ]);
});

test("a policy listed twice on a route is reported", () => {
  assert.match(run([AUTH], [route(["auth", "auth"])])[0]!, /inbound\[1\]: policy "auth" is listed twice/);
});
