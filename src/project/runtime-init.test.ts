/**
 * `modules/zuplo.runtime.ts` as Zuplo documents it: it imports from `@zuplo/runtime` and
 * `@zuplo/runtime/mcp-gateway` (not installed here) and registers `McpGatewayPlugin`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeProject } from "../../test/helpers/harness.js";
import { loadProject } from "./load.js";
import { ProjectConfigError } from "./types.js";

const runtimeModule = (pluginArgs = "") => `import { RuntimeExtensions } from "@zuplo/runtime";
import { McpGatewayPlugin } from "@zuplo/runtime/mcp-gateway";

export function runtimeInit(runtime: RuntimeExtensions) {
  runtime.addPlugin(new McpGatewayPlugin(${pluginArgs}));
}
`;

const routes = (...paths: string[]) =>
  JSON.stringify({
    openapi: "3.1.0",
    info: { title: "t", version: "1" },
    paths: Object.fromEntries(
      paths.map((p, i) => [p, { get: { operationId: `r${i}`, "x-zuplo-route": { handler: { module: "$import(./modules/h)", export: "h" } } } }]),
    ),
  });
const handler = `export function h() { return new Response("ok"); }\n`;

async function load(files: Record<string, string>) {
  const dir = await writeProject({ "modules/h.ts": handler, ...files });
  return loadProject(dir, { env: {} });
}

async function issuesOf(files: Record<string, string>): Promise<string[]> {
  try {
    await load(files);
  } catch (err) {
    assert.ok(err instanceof ProjectConfigError, String(err));
    return err.issues.map((i) => `${i.file}: ${i.path}: ${i.message}`);
  }
  assert.fail("expected configuration errors");
}

test("a project without modules/zuplo.runtime.ts has no plugin", async () => {
  const p = await load({ "config/routes.oas.json": routes("/mcp/a") });
  assert.equal(p.mcpGateway, undefined);
});

test("McpGatewayPlugin without options: Zuplo's defaults (CommonJS project folder)", async () => {
  const p = await load({ "config/routes.oas.json": routes("/mcp/a"), "modules/zuplo.runtime.ts": runtimeModule() });
  assert.deepEqual(p.mcpGateway, { basePath: "/__zuplo", registry: { enabled: true, path: "/__zuplo/mcp-registry" } });
});

test("McpGatewayPlugin options take effect (ES module project folder)", async () => {
  const p = await load({
    "package.json": `{ "type": "module" }`,
    "config/routes.oas.json": routes("/mcp/a"),
    "modules/zuplo.runtime.ts": runtimeModule(`{ basePath: "/gw/", registry: { path: "/catalog" } }`),
  });
  assert.deepEqual(p.mcpGateway, { basePath: "/gw", registry: { enabled: true, path: "/catalog" } });
});

test("basePath / is the origin root; the registry can be turned off", async () => {
  const p = await load({
    "config/routes.oas.json": routes("/mcp/a"),
    "modules/zuplo.runtime.ts": runtimeModule(`{ basePath: "/", registry: { enabled: false } }`),
  });
  assert.deepEqual(p.mcpGateway, { basePath: "", registry: { enabled: false, path: "/mcp-registry" } });
});

test("bad plugin options are configuration errors naming the file and option", async () => {
  const issues = await issuesOf({
    "config/routes.oas.json": routes("/mcp/a"),
    "modules/zuplo.runtime.ts": runtimeModule(`{ basePath: "zuplo", registry: { enabled: "yes" }, extra: 1 } as any`),
  });
  assert.ok(issues.some((i) => i.startsWith("modules/zuplo.runtime.ts: McpGatewayPlugin.basePath: ") && i.includes("must start with /")), issues.join("\n"));
  assert.ok(issues.some((i) => i.startsWith("modules/zuplo.runtime.ts: McpGatewayPlugin.registry.enabled: ")), issues.join("\n"));
  assert.ok(issues.some((i) => i.startsWith("modules/zuplo.runtime.ts: McpGatewayPlugin") && i.includes("extra")), issues.join("\n"));
});

test("routes under the base path or the registry collide; a disabled registry has no guard", async () => {
  const issues = await issuesOf({
    "config/routes.oas.json": routes("/__zuplo/mcp", "/mcp-registry/x", "/mcp/ok"),
    "modules/zuplo.runtime.ts": runtimeModule(`{ registry: { path: "/mcp-registry" } }`),
  });
  assert.deepEqual(
    issues.map((i) => i.split(": ").slice(0, 2).join(": ")),
    ['config/routes.oas.json: paths["/__zuplo/mcp"]', 'config/routes.oas.json: paths["/mcp-registry/x"]'],
  );
  assert.match(issues[0]!, /collides with the gateway's endpoints under basePath "\/__zuplo"/);
  assert.match(issues[1]!, /collides with the MCP server registry at \/mcp-registry/);

  const ok = await load({
    "config/routes.oas.json": routes("/mcp-registry/x"),
    "modules/zuplo.runtime.ts": runtimeModule(`{ registry: { enabled: false, path: "/mcp-registry" } }`),
  });
  assert.equal(ok.mcpGateway?.registry.enabled, false);
});

test("a registry mount may not shadow /.well-known or the authorize endpoints", async () => {
  for (const [path, why] of [
    ["/.well-known", /shadow the \/.well-known documents/],
    ["/", /shadow the \/.well-known documents/],
    ["/__zuplo/oauth", /shadow the authorization endpoints/],
    ["/__zuplo/oauth/authorize/mcp", /shadow the authorization endpoints/],
  ] as const) {
    const issues = await issuesOf({
      "config/routes.oas.json": routes("/mcp/a"),
      "modules/zuplo.runtime.ts": runtimeModule(`{ registry: { path: ${JSON.stringify(path)} } }`),
    });
    assert.equal(issues.length, 1, issues.join("\n"));
    assert.match(issues[0]!, /^modules\/zuplo\.runtime\.ts: McpGatewayPlugin\.registry\.path: /);
    assert.match(issues[0]!, why);
  }
});

test("other runtime extension points and a missing runtimeInit are reported, not ignored", async () => {
  const hook = await issuesOf({
    "config/routes.oas.json": routes("/mcp/a"),
    "modules/zuplo.runtime.ts": `export function runtimeInit(runtime: any) { runtime.addResponseSendingHook(() => {}); }\n`,
  });
  assert.deepEqual(hook, [
    "modules/zuplo.runtime.ts: runtimeInit: runtime.addResponseSendingHook is not supported by Tollgate; remove the call (see docs/project-format.md)",
  ]);
  const missing = await issuesOf({ "config/routes.oas.json": routes("/mcp/a"), "modules/zuplo.runtime.ts": `export const x = 1;\n` });
  assert.deepEqual(missing, ["modules/zuplo.runtime.ts: runtimeInit: expected an exported function runtimeInit(runtime)"]);
});
