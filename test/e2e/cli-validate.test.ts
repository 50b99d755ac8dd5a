/**
 * `tollgate validate` checks what `tollgate start` checks: for each project or setting `start`
 * refuses, `validate` exits 1 with the same problem line — and writes nothing into the project.
 * Also: an unset `$env()` is named in the problem, a JSONC syntax error comes alone (these two
 * through the CLI's `main()` in this process).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { main } from "../../src/cli/main.js";
import { runCli } from "../helpers/cli.js";
import { writeProject } from "../helpers/harness.js";

const STACK = /^\s+at .+:\d+:\d+\)?$/m;

/** `main()` of the CLI in this process (output formatting; the child-process runs cover the rest). */
async function validateInProcess(dir: string, env: Record<string, string> = {}): Promise<{ code: number | undefined; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(["validate", "--project", dir], { TOLLGATE_STORE: "memory:", ...env }, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}
const MCP = "$import(@zuplo/runtime/mcp-gateway)";

const routes = (paths: Record<string, unknown>) => JSON.stringify({ openapi: "3.1.0", info: { title: "t", version: "1" }, paths });
const proxyRoute = (rewritePattern: string, inbound: string[] = []) => ({
  "get,post": {
    operationId: "mcp",
    "x-zuplo-route": { corsPolicy: "none", handler: { module: MCP, export: "McpProxyHandler", options: { rewritePattern } }, policies: { inbound } },
  },
});
const policy = (name: string, policyType: string, exportName: string, options: unknown) => ({
  name,
  policyType,
  handler: { module: MCP, export: exportName, options },
});

interface Case {
  name: string;
  files: Record<string, string>;
  env?: Record<string, string>;
  /** A line both commands print. */
  line: RegExp;
  /** Also run `start` (each kind of check once: a project file, the build, a setting). */
  start?: boolean;
}

const CASES: Case[] = [
  {
    name: "an unset ${env.X} in rewritePattern",
    files: { "config/routes.oas.json": routes({ "/mcp": proxyRoute("${env.UPSTREAM_URL}") }) },
    line: /rewritePattern uses \$\{env\.UPSTREAM_URL\}, but UPSTREAM_URL is not set/,
    start: true,
  },
  {
    name: "a route that needs a browser login with none configured",
    files: {
      "config/routes.oas.json": routes({ "/mcp": proxyRoute("http://127.0.0.1:9/mcp", ["mcp-oauth"]) }),
      "config/policies.json": JSON.stringify({ policies: [policy("mcp-oauth", "mcp-oauth-inbound", "McpOAuthInboundPolicy", {})] }),
    },
    line: /policy "mcp-oauth": no browser login is configured/,
    start: true,
  },
  {
    name: "a bad TOLLGATE_LOG_LEVEL",
    files: {},
    env: { TOLLGATE_LOG_LEVEL: "loud" },
    line: /TOLLGATE_LOG_LEVEL must be one of/,
  },
  {
    name: "an unknown TOLLGATE_STORE",
    files: {},
    env: { TOLLGATE_STORE: "redis://cache:6379" },
    line: /TOLLGATE_STORE: unsupported store "redis:\/\/cache:6379"/,
  },
  {
    name: "production without an encryption key",
    files: {},
    env: { TOLLGATE_MODE: "production" },
    line: /TOLLGATE_ENCRYPTION_KEY is required in production \(generate one with `node bin\/tollgate\.js keys generate`\)/,
    start: true,
  },
];

for (const c of CASES) {
  test(`validate${c.start ? " and start both refuse" : " refuses, as start does,"} ${c.name}${c.start ? ", with the same line" : ""}`, async () => {
    const dir = await writeProject(c.files);
    const env = { TOLLGATE_STORE: "memory:", ...c.env };
    const validated = await runCli(["validate", "--project", dir], env);
    assert.equal(validated.code, 1, `validate:\n${validated.stdout}\n${validated.stderr}`);
    assert.match(validated.stderr, c.line);
    assert.doesNotMatch(validated.stdout, /OK/);
    assert.doesNotMatch(validated.stderr, STACK);
    assert.equal(fs.existsSync(path.join(dir, ".tollgate")), false, "validate writes nothing into the project");

    if (!c.start) return;
    const started = await runCli(["start", "--project", dir, "--port", "0", "--workers", "1"], env);
    assert.equal(started.code, 1, `start:\n${started.stdout}\n${started.stderr}`);
    assert.match(started.stderr, c.line);
    const problem = (s: string) => s.split("\n").find((l) => c.line.test(l));
    assert.equal(problem(validated.stderr), problem(started.stderr));
  });
}

test("validate passes a project start serves, and prints the warnings start would", async () => {
  const dir = await writeProject({
    "config/routes.oas.json": routes({ "/mcp": proxyRoute("${env.UPSTREAM_URL}", ["mcp-oauth"]) }),
    "config/policies.json": JSON.stringify({ policies: [policy("mcp-oauth", "mcp-oauth-inbound", "McpOAuthInboundPolicy", {})] }),
  });
  const r = await runCli(["validate", "--project", dir], { UPSTREAM_URL: "http://127.0.0.1:9/mcp", TOLLGATE_DEV_LOGIN: "1" });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^OK: 1 route\(s\), 1 policy\(ies\)/m);
  assert.match(r.stderr, /^warning: policy "mcp-oauth": mcp-oauth-inbound signs browsers in with the loopback-only dev login/m);
  assert.equal(fs.existsSync(path.join(dir, ".tollgate")), false, "no development key, no database");
});

test("validate names the unset variable of a clientId given as $env()", async () => {
  const dir = await writeProject({
    "config/routes.oas.json": routes({ "/mcp": proxyRoute("http://127.0.0.1:9/mcp", ["mcp-oauth", "mcp-token-exchange-gh"]) }),
    "config/policies.json": JSON.stringify({
      policies: [
        policy("mcp-oauth", "mcp-oauth-inbound", "McpOAuthInboundPolicy", {}),
        policy("mcp-token-exchange-gh", "mcp-token-exchange-inbound", "McpTokenExchangeInboundPolicy", {
          displayName: "GitHub",
          clientRegistration: { mode: "manual", clientId: "$env(GITHUB_CLIENT_ID)", clientSecret: "$env(GITHUB_CLIENT_SECRET)" },
        }),
      ],
    }),
  });
  const r = await validateInProcess(dir, { TOLLGATE_DEV_LOGIN: "1", GITHUB_CLIENT_SECRET: "s3cret-value" });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^config\/policies\.json: policies\[1\]\.handler\.options\.clientRegistration(\.|: )clientId: .*\(environment variable GITHUB_CLIENT_ID is not set\)$/m);
  assert.doesNotMatch(r.stderr, /s3cret-value/);
});

test("validate lists a JSONC syntax error alone, before and instead of its consequences", async () => {
  const dir = await writeProject({
    "config/routes.oas.json": routes({ "/mcp": proxyRoute("http://127.0.0.1:9/mcp", ["mcp-oauth"]) }),
    "config/policies.json": `{\n  "policies": [\n    { "name": "mcp-oauth" "policyType": "mcp-oauth-inbound" },\n  ],\n}\n`,
  });
  const r = await validateInProcess(dir);
  assert.equal(r.code, 1);
  const lines = r.stderr.split("\n").filter(Boolean);
  assert.match(lines[0]!, /^config\/policies\.json: line 3, column \d+: ',' expected$/);
  assert.deepEqual(lines.slice(1), ["1 configuration problem found"], "no unknown-policy line for the route");
});
