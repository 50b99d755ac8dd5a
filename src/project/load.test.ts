import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { writeProject } from "../../test/helpers/harness.js";
// McpProxyHandler / McpTokenExchangeInboundPolicy stand-ins, registered only if the real ones are missing.
import { ensureFakeBuiltins } from "../../test/helpers/fake-builtins.js";
import { registerBuiltin, RUNTIME_MODULE } from "../policies/registry.js";
import { loadProject } from "./load.js";
import { ProjectConfigError } from "./types.js";

ensureFakeBuiltins();

// Test-only built-ins with known schemas, so these tests do not depend on real policy options.
registerBuiltin({
  kind: "inbound",
  exportName: "TestAuthPolicy",
  modules: [RUNTIME_MODULE],
  policyTypes: ["test-auth-inbound"],
  optionsSchema: z.strictObject({ mode: z.enum(["strict", "lax"]), secret: z.string().min(1) }),
  mcpFeature: false,
  authenticates: true,
  create: () => (r) => r,
});
registerBuiltin({
  kind: "outbound",
  exportName: "TestOutboundPolicy",
  modules: [RUNTIME_MODULE],
  policyTypes: ["test-outbound"],
  optionsSchema: z.object({}),
  mcpFeature: false,
  create: () => (res) => res,
});
registerBuiltin({
  kind: "handler",
  exportName: "TestMcpHandler",
  modules: [RUNTIME_MODULE],
  optionsSchema: z.object({ target: z.string() }),
  mcpFeature: true,
  mcp: true,
  create: () => () => new Response("ok"),
});

const json = (v: unknown) => JSON.stringify(v, null, 2);

function policies(list: unknown[], corsPolicies: unknown[] = []) {
  return json({ policies: list, corsPolicies });
}
function routes(paths: Record<string, unknown>) {
  return json({ openapi: "3.1.0", info: { title: "t", version: "1" }, paths });
}
const mcpRoute = (inbound: string[], extra: Record<string, unknown> = {}) => ({
  operationId: "mcp",
  "x-zuplo-route": {
    corsPolicy: "none",
    handler: { module: "$import(@zuplo/runtime)", export: "TestMcpHandler", options: { target: "$env(TARGET)" } },
    policies: { inbound },
    ...extra,
  },
});
const authPolicy = (options: unknown = { mode: "strict", secret: "$env(SECRET)" }) => ({
  name: "auth",
  policyType: "test-auth-inbound",
  handler: { module: "$import(@zuplo/runtime)", export: "TestAuthPolicy", options },
});

async function issuesOf(files: Record<string, string>, env: Record<string, string> = {}): Promise<string[]> {
  const dir = await writeProject(files);
  try {
    await loadProject(dir, { env });
  } catch (err) {
    assert.ok(err instanceof ProjectConfigError, String(err));
    return err.issues.map((i) => `${i.file}: ${i.path}: ${i.message}`);
  }
  assert.fail("expected a ProjectConfigError");
}

test("a valid project loads: built-ins, custom modules, $env, CORS, .env", async () => {
  const dir = await writeProject({
    ".env": "TARGET=https://from-file.example/mcp\nSECRET=file-secret\nGREETING=hi\n",
    "config/policies.json": policies(
      [
        authPolicy(),
        { name: "custom", policyType: "custom-code-inbound", handler: { module: "$import(./modules/custom)", export: "policy", options: { tag: "x-$env(GREETING)", keep: { n: 1 } } } },
        { name: "out", policyType: "test-outbound", handler: { module: "$import(@zuplo/runtime)", export: "TestOutboundPolicy" } },
      ],
      [{ name: "web", allowedOrigins: ["https://app.example"], allowedMethods: ["get"] }],
    ),
    "config/routes.oas.json": routes({
      "/mcp": { "get,post": mcpRoute(["auth", "custom"], { policies: { inbound: ["auth", "custom"], outbound: ["out"] } }) },
      "/hello/{name}": {
        get: {
          operationId: "hello",
          "x-zuplo-route": { corsPolicy: "web", handler: { module: "$import(./modules/custom)", export: "handler" } },
        },
      },
    }),
    "modules/custom.ts": `export const policy = (r: Request) => r;\nexport function handler() { return new Response("hi"); }\n`,
  });
  const project = await loadProject(dir, { env: { TARGET: "https://from-process.example/mcp" } });
  assert.equal(project.compatibilityDate, "2026-03-01");
  assert.equal(project.env.TARGET, "https://from-process.example/mcp", "process env wins over .env");
  assert.equal(project.env.SECRET, "file-secret");
  const [mcp, hello] = project.routes;
  assert.deepEqual(mcp!.methods, ["GET", "POST"]);
  assert.equal(mcp!.mcp, true);
  assert.equal(mcp!.handlerImpl, "builtin");
  assert.deepEqual(mcp!.handlerOptions, { target: "https://from-process.example/mcp" });
  assert.equal(mcp!.handler.module, "@zuplo/runtime");
  assert.deepEqual(mcp!.policies, { inbound: ["auth", "custom"], outbound: ["out"] });
  assert.equal(hello!.mcp, false);
  assert.equal(hello!.handlerImpl, "custom");
  assert.equal(hello!.path, "/hello/{name}");
  assert.equal(hello!.corsPolicy, "web");
  const auth = project.policies.get("auth")!;
  assert.equal(auth.impl, "builtin");
  assert.deepEqual(auth.options, { mode: "strict", secret: "file-secret" });
  const custom = project.policies.get("custom")!;
  assert.equal(custom.impl, "custom");
  assert.deepEqual(custom.options, { tag: "x-hi", keep: { n: 1 } });
  assert.equal(custom.impl === "custom" && typeof custom.fn, "function");
  assert.deepEqual(project.corsPolicies.get("web")?.allowedMethods, ["GET"]);
  assert.ok(project.corsPolicies.has("anything-goes"));
});

test("every problem is reported at once, grouped by file", async () => {
  const lines = await issuesOf({
    "zuplo.jsonc": `{ "version": 1, "compatibilityDate": "2025-01-01" }`,
    "config/policies.json": policies([
      authPolicy({ mode: "loose" }),
      authPolicy(),
      { name: "h", policyType: "x-inbound", handler: { module: "$import(@zuplo/runtime)", export: "TestMcpHandler", options: { target: "t" } } },
    ]),
    "config/routes.oas.json": routes({
      "/mcp": { "get,post": mcpRoute(["auth", "missing"]) },
      "/x": { get: { operationId: "x", "x-zuplo-route": { handler: { module: "$import(@zuplo/runtime)", export: "Nope" } } } },
    }),
  });
  const expected = [
    'config/routes.oas.json: paths["/mcp"]["get,post"]["x-zuplo-route"].handler.export: TestMcpHandler is an MCP gateway feature and needs compatibilityDate >= 2026-03-01 in zuplo.jsonc (found 2025-01-01)',
    'config/routes.oas.json: paths["/mcp"]["get,post"]["x-zuplo-route"].handler.options.target: required (expected string) (environment variable TARGET is not set)',
    'config/routes.oas.json: paths["/x"].get["x-zuplo-route"].handler.export: "Nope" is not an export of @zuplo/runtime; available: ',
    'config/routes.oas.json: paths["/mcp"]["get,post"]["x-zuplo-route"].policies.inbound[1]: unknown policy "missing" on GET,POST /mcp; it is not defined in config/policies.json',
    'config/policies.json: policies[0].handler.options.mode: expected "strict" | "lax", got "loose"',
    "config/policies.json: policies[0].handler.options.secret: required (expected string)",
    "config/policies.json: policies[2].handler.export: TestMcpHandler is a handler, not a policy",
    'config/policies.json: policies[1].name: duplicate policy name "auth" (first declared at policies[0])',
  ];
  for (const e of expected) assert.ok(lines.some((l) => l.startsWith(e)), `missing:\n${e}\nin:\n${lines.join("\n")}`);
  const available = lines.find((l) => l.includes('"Nope" is not an export'))!;
  assert.match(available, /TestAuthPolicy/);
  assert.equal(lines.length, expected.length, lines.join("\n"));
  const files = lines.map((l) => l.split(":")[0]);
  assert.deepEqual(files, [...files].sort((a, b) => (a === b ? 0 : a === "config/routes.oas.json" ? -1 : 1)));
});

test("$env outside options is a config error everywhere", async () => {
  const lines = await issuesOf({
    "zuplo.jsonc": `{ "version": 1, "compatibilityDate": "$env(DATE)" }`,
    "config/policies.json": policies(
      [{ name: "$env(NAME)", policyType: "custom-code-inbound", handler: { module: "$import(./modules/$env(M))", export: "p" } }],
      [{ name: "web", allowedOrigins: ["$env(ORIGIN)"] }],
    ),
    "config/routes.oas.json": routes({
      "/a/$env(P)": { get: { operationId: "a", "x-zuplo-route": { handler: { module: "$import(./m)", export: "$env(E)" } } } },
    }),
  }, { DATE: "2026-03-01", NAME: "n", M: "m", ORIGIN: "o", P: "p", E: "e" });
  for (const e of [
    "zuplo.jsonc: compatibilityDate: $env(...) is only allowed inside handler and policy options",
    'config/routes.oas.json: paths["/a/$env(P)"]: $env(...) is only allowed',
    'config/routes.oas.json: paths["/a/$env(P)"].get["x-zuplo-route"].handler.export: $env(...) is only allowed',
    "config/policies.json: policies[0].name: $env(...) is only allowed",
    "config/policies.json: policies[0].handler.module: $env(...) is only allowed",
    "config/policies.json: corsPolicies[0].allowedOrigins[0]: $env(...) is only allowed",
  ]) {
    assert.ok(lines.some((l) => l.startsWith(e)), `missing:\n${e}\nin:\n${lines.join("\n")}`);
  }
});

test("project modules: missing file, missing export, non-function export", async () => {
  const lines = await issuesOf({
    "config/routes.oas.json": routes({
      "/a": { get: { operationId: "a", "x-zuplo-route": { handler: { module: "$import(./modules/none)", export: "h" } } } },
      "/b": { get: { operationId: "b", "x-zuplo-route": { handler: { module: "$import(./modules/m)", export: "nope" } } } },
      "/c": { get: { operationId: "c", "x-zuplo-route": { handler: { module: "$import(./modules/m)", export: "value" } } } },
      "/d": { get: { operationId: "d", "x-zuplo-route": { handler: { module: "$import(./modules/broken)", export: "x" } } } },
    }),
    "modules/m.ts": `export const value = 42;\nexport function ok() { return new Response(); }\n`,
    "modules/broken.ts": `export const x = ;\n`,
  });
  const at = (p: string) => `config/routes.oas.json: paths["${p}"].get["x-zuplo-route"].handler`;
  assert.ok(lines.some((l) => l.startsWith(`${at("/a")}.module: module ./modules/none not found`)), lines.join("\n"));
  assert.ok(lines.some((l) => l === `${at("/b")}.export: ./modules/m has no export "nope"; function exports: ok`), lines.join("\n"));
  assert.ok(lines.some((l) => l === `${at("/c")}.export: export "value" of ./modules/m must be a function, got number`), lines.join("\n"));
  assert.ok(lines.some((l) => l.startsWith(`${at("/d")}.module: cannot load ./modules/broken:`)), lines.join("\n"));
  assert.equal(lines.length, 4, lines.join("\n"));
});

test("policyType must match the built-in export", async () => {
  const lines = await issuesOf({
    "config/policies.json": policies([{ ...authPolicy({ mode: "lax", secret: "s" }), policyType: "api-key-inbound" }]),
  });
  assert.deepEqual(lines, ['config/policies.json: policies[0].policyType: TestAuthPolicy implements "test-auth-inbound", got "api-key-inbound"']);
});

test("mcp-*-inbound policy types need the compatibility date", async () => {
  const lines = await issuesOf({
    "zuplo.jsonc": `{ "compatibilityDate": "2026-02-28" }`,
    "config/policies.json": policies([
      { name: "tx", policyType: "mcp-token-exchange-inbound", handler: { module: "$import(./modules/p)", export: "p" } },
    ]),
    "modules/p.ts": "export const p = (r: Request) => r;\n",
  });
  assert.deepEqual(lines, [
    "config/policies.json: policies[0].policyType: mcp-token-exchange-inbound is an MCP gateway feature and needs compatibilityDate >= 2026-03-01 in zuplo.jsonc (found 2026-02-28)",
  ]);
});

test("missing files and bad JSONC are reported by file", async () => {
  const dir = await writeProject({ "config/routes.oas.json": "{ \"paths\": { ,} }" });
  const fs = await import("node:fs/promises");
  await fs.rm(`${dir}/zuplo.jsonc`);
  await assert.rejects(loadProject(dir), (err: ProjectConfigError) => {
    const lines = err.issues.map((i) => `${i.file}: ${i.message}`);
    assert.ok(lines.includes("zuplo.jsonc: file not found"), lines.join("\n"));
    assert.ok(lines.some((l) => /^config\/routes\.oas\.json: line 1, column \d+: /.test(l)), lines.join("\n"));
    return true;
  });
});

test("a policy export used as a handler is reported", async () => {
  const lines = await issuesOf({
    "config/routes.oas.json": routes({
      "/a": { get: { operationId: "a", "x-zuplo-route": { handler: { module: "$import(@zuplo/runtime)", export: "TestAuthPolicy" } } } },
    }),
  });
  assert.deepEqual(lines, ['config/routes.oas.json: paths["/a"].get["x-zuplo-route"].handler.export: TestAuthPolicy is an inbound policy, not a handler']);
});

test("option keys a built-in ignores load, but each one is a warning with its file and path", async () => {
  const dir = await writeProject({
    "config/routes.oas.json": routes({
      "/mcp": {
        "get,post": {
          operationId: "mcp",
          "x-zuplo-route": {
            corsPolicy: "none",
            handler: { module: "$import(@zuplo/runtime)", export: "TestMcpHandler", options: { target: "x", targt: "typo" } },
            policies: { inbound: [], outbound: ["out"] },
          },
        },
      },
    }),
    "config/policies.json": policies([
      {
        name: "out",
        policyType: "test-outbound",
        handler: { module: "$import(@zuplo/runtime)", export: "TestOutboundPolicy", options: { browserLoginOverrides: { a: 1 } } },
      },
    ]),
  });
  const project = await loadProject(dir, {});
  assert.deepEqual(
    project.warnings.map((w) => `${w.file}: ${w.path}: ${w.message}`),
    [
      'config/policies.json: policies[0].handler.options.browserLoginOverrides: TestOutboundPolicy does not use "browserLoginOverrides"; it is ignored',
      'config/routes.oas.json: paths["/mcp"] (mcp).x-zuplo-route.handler.options.targt: TestMcpHandler does not use "targt"; it is ignored',
    ],
  );
});

test("an unset or empty $env variable is named in the problem it causes, wherever the option sits", async () => {
  const builtin = (name: string, policyType: string, exportName: string, options: unknown) => ({
    name,
    policyType,
    handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: exportName, options },
  });
  const lines = await issuesOf(
    {
      "config/policies.json": policies([
        // clientId inside a union member (manual registration): the problem is on the union
        builtin("mcp-token-exchange-gh", "mcp-token-exchange-inbound", "McpTokenExchangeInboundPolicy", {
          displayName: "GitHub",
          clientRegistration: { mode: "manual", clientId: "$env(GH_CLIENT_ID)", clientSecret: "$env(GH_CLIENT_SECRET)" },
        }),
        // clientId of a preset, set to the empty string
        builtin("auth0", "mcp-auth0-oauth-inbound", "McpAuth0OAuthInboundPolicy", {
          auth0Domain: "acme.us.auth0.com",
          clientId: "$env(AUTH0_CLIENT_ID)",
          clientSecret: "$env(AUTH0_CLIENT_SECRET)",
        }),
        // an optional clientId that a rule on the enclosing object requires
        builtin("corp", "mcp-oauth-inbound", "McpOAuthInboundPolicy", {
          oidc: { issuer: "https://idp.example", jwksUrl: "https://idp.example/jwks" },
          browserLogin: { url: "https://idp.example/authorize", tokenUrl: "https://idp.example/token", clientId: "$env(IDP_CLIENT_ID)" },
        }),
      ]),
    },
    { GH_CLIENT_SECRET: "s", AUTH0_CLIENT_ID: "", AUTH0_CLIENT_SECRET: "s" },
  );
  const named = (policy: number, variable: string, state: string) =>
    lines.some((l) => l.startsWith(`config/policies.json: policies[${policy}].handler.options.`) && l.endsWith(`(environment variable ${variable} ${state})`));
  assert.ok(named(0, "GH_CLIENT_ID", "is not set"), lines.join("\n"));
  assert.ok(named(1, "AUTH0_CLIENT_ID", "is empty"), lines.join("\n"));
  assert.ok(named(2, "IDP_CLIENT_ID", "is not set"), lines.join("\n"));
  // The problem names the member that failed, not just "invalid value" for the union.
  assert.ok(lines.some((l) => /clientRegistration(\.|: )clientId: required/.test(l)), lines.join("\n"));
  // Variables that are set are never named.
  assert.ok(!lines.some((l) => /GH_CLIENT_SECRET|AUTH0_CLIENT_SECRET/.test(l)), lines.join("\n"));
});

test("a JSONC syntax error is reported alone, not followed by the problems it causes", async () => {
  const lines = await issuesOf({
    // policies.json does not parse, so the route's policy would otherwise be "unknown"
    "config/policies.json": `{ "policies": [ { "name": "auth", } ] `,
    "config/routes.oas.json": routes({ "/mcp": { "get,post": mcpRoute(["auth"]) } }),
  }, { TARGET: "https://t.example/mcp" });
  assert.ok(lines.length > 0);
  for (const l of lines) assert.match(l, /^config\/policies\.json: : line \d+, column \d+: /, lines.join("\n"));
});
