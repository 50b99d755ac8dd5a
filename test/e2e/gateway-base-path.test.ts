/**
 * The base path of the gateway's endpoints: McpGatewayPlugin's option, `/__zuplo` with the
 * plugin, `TOLLGATE_BASE_PATH` without it; routes may not sit under it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startGateway, writeProject } from "../helpers/harness.js";

const handler = `export function h() { return new Response("ok"); }\n`;
const routes = (path: string) =>
  JSON.stringify({
    openapi: "3.1.0",
    info: { title: "t", version: "1" },
    paths: { [path]: { get: { operationId: "r", "x-zuplo-route": { handler: { module: "$import(./modules/h)", export: "h" } } } } },
  });
const plugin = (args = "") =>
  `import { McpGatewayPlugin } from "@zuplo/runtime/mcp-gateway";\n` +
  `export function runtimeInit(runtime: any) { runtime.addPlugin(new McpGatewayPlugin(${args})); }\n`;

async function basePathOf(files: Record<string, string>, env: Record<string, string> = {}): Promise<string> {
  const dir = await writeProject({ "modules/h.ts": handler, "config/routes.oas.json": routes("/mcp/a"), ...files });
  const gw = await startGateway({ projectDir: dir, env });
  try {
    return gw.services.settings.basePath;
  } finally {
    await gw.close();
  }
}

test("plugin option, then /__zuplo with the plugin, then TOLLGATE_BASE_PATH, then /__tollgate", async () => {
  assert.equal(await basePathOf({ "modules/zuplo.runtime.ts": plugin(`{ basePath: "/gw" }`) }, { TOLLGATE_BASE_PATH: "/env" }), "/gw");
  assert.equal(await basePathOf({ "modules/zuplo.runtime.ts": plugin() }, { TOLLGATE_BASE_PATH: "/env" }), "/__zuplo");
  assert.equal(await basePathOf({}, { TOLLGATE_BASE_PATH: "/env" }), "/env");
  assert.equal(await basePathOf({}), "/__tollgate");
});

test("a route under TOLLGATE_BASE_PATH stops the start with a clear error", async () => {
  const dir = await writeProject({ "modules/h.ts": handler, "config/routes.oas.json": routes("/gw/mcp") });
  await assert.rejects(startGateway({ projectDir: dir, env: { TOLLGATE_BASE_PATH: "/gw" } }), /the route \/gw\/mcp collides with the gateway's endpoints under base path "\/gw"/);
});
