/**
 * The MCP Server Registry (v0.1) a project with McpGatewayPlugin serves: generated from its MCP
 * routes, read-only, unauthenticated, CORS `*`, `{"error"}` bodies; disabled or moved by the
 * plugin's `registry` option.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startGateway, writeProject, type RunningGateway } from "../helpers/harness.js";

const MCP = "$import(@zuplo/runtime/mcp-gateway)";
const plugin = (args = "") =>
  `import { McpGatewayPlugin } from "@zuplo/runtime/mcp-gateway";\n` +
  `export function runtimeInit(runtime: any) { runtime.addPlugin(new McpGatewayPlugin(${args})); }\n`;

function route(operationId: string) {
  return {
    "get,post": {
      operationId,
      "x-zuplo-route": { corsPolicy: "none", handler: { module: MCP, export: "McpProxyHandler", options: { rewritePattern: "http://127.0.0.1:9/mcp" } } },
    },
  };
}

async function gateway(runtime: string, paths: Record<string, unknown>): Promise<RunningGateway> {
  const dir = await writeProject({
    "modules/zuplo.runtime.ts": runtime,
    "modules/h.ts": `export function h() { return new Response("not mcp"); }\n`,
    "config/routes.oas.json": JSON.stringify({ openapi: "3.1.0", info: { title: "r", version: "1" }, paths }),
  });
  return startGateway({ projectDir: dir });
}

describe("MCP server registry", () => {
  let gw: RunningGateway;
  before(async () => {
    const paths: Record<string, unknown> = {
      "/plain": { get: { operationId: "plain", "x-zuplo-route": { handler: { module: "$import(./modules/h)", export: "h" } } } },
      "/mcp/{tenant}": route("per-tenant"),
    };
    for (let i = 0; i < 35; i++) paths[`/mcp/s${String(i).padStart(2, "0")}`] = route(`server-${String(i).padStart(2, "0")}`);
    gw = await gateway(plugin(), paths);
  });
  after(() => gw?.close());

  const get = (path: string, init: RequestInit = {}) => fetch(`${gw.url}/__zuplo/mcp-registry${path}`, init);

  test("lists the concrete MCP routes, 30 a page, with a cursor", async () => {
    const res = await get("/v0.1/servers");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    const first = (await res.json()) as { servers: Array<{ server: Record<string, unknown>; _meta: unknown }>; metadata: { count: number; nextCursor?: string; cursor?: string } };
    assert.equal(first.metadata.count, 30);
    assert.ok(first.metadata.nextCursor);
    assert.equal(first.metadata.cursor, first.metadata.nextCursor, "the documented `cursor` carries the same value");
    const s0 = first.servers[0]!.server;
    assert.deepEqual(s0, {
      name: "1.0.0.127/server-00",
      title: "server-00",
      description: "server-00 through 127.0.0.1",
      version: "0.0.0",
      remotes: [{ type: "streamable-http", url: `${gw.url}/mcp/s00` }],
    });
    const names = first.servers.map((e) => e.server.name);
    assert.ok(!names.some((n) => String(n).includes("plain") || String(n).includes("per-tenant")), "only concrete MCP routes");
    const second = (await (await get(`/v0.1/servers?cursor=${first.metadata.nextCursor}`)).json()) as typeof first;
    assert.equal(second.metadata.count, 5);
    assert.equal(second.metadata.nextCursor, undefined);
    assert.equal(second.metadata.cursor, undefined);
    assert.equal(second.servers[0]!.server.name, "1.0.0.127/server-30");
  });

  test("limit, search, version and updated_since", async () => {
    const limited = (await (await get("/v0.1/servers?limit=500")).json()) as { metadata: { count: number } };
    assert.equal(limited.metadata.count, 35, "limit is capped at 100");
    const found = (await (await get("/v0.1/servers?search=SERVER-1&version=latest")).json()) as { servers: Array<{ server: { name: string } }> };
    assert.deepEqual(found.servers.map((e) => e.server.name), Array.from({ length: 10 }, (_, i) => `1.0.0.127/server-1${i}`));
    const since = await get("/v0.1/servers?updated_since=2030-01-01T00:00:00Z");
    assert.equal(((await since.json()) as { metadata: { count: number } }).metadata.count, 30, "updated_since never filters");
    for (const bad of ["updated_since=yesterday", "limit=0", "limit=x", "cursor=%%%"]) {
      const res = await get(`/v0.1/servers?${bad}`);
      assert.equal(res.status, 400, bad);
      assert.equal(typeof ((await res.json()) as { error: string }).error, "string");
    }
  });

  test("one server: its versions, a version, latest; unknown → 404", async () => {
    const name = encodeURIComponent("1.0.0.127/server-07");
    const versions = (await (await get(`/v0.1/servers/${name}/versions`)).json()) as { servers: unknown[]; metadata: { count: number } };
    assert.equal(versions.metadata.count, 1);
    const latest = (await (await get(`/v0.1/servers/${name}/versions/latest`)).json()) as { server: { version: string } };
    assert.equal(latest.server.version, "0.0.0");
    assert.equal((await get(`/v0.1/servers/${name}/versions/0.0.0`)).status, 200);
    assert.equal((await get(`/v0.1/servers/${name}/versions/9.9.9`)).status, 404);
    assert.equal((await get(`/v0.1/servers/${encodeURIComponent("x/none")}/versions`)).status, 404);
  });

  test("read-only: publish and edits 501, status 403, anything else 404, preflight answered", async () => {
    const name = encodeURIComponent("1.0.0.127/server-07");
    assert.equal((await get("/v0.1/publish", { method: "POST", body: "{}" })).status, 501);
    assert.equal((await get(`/v0.1/servers/${name}/versions/0.0.0`, { method: "PUT", body: "{}" })).status, 501);
    assert.equal((await get(`/v0.1/servers/${name}/versions/0.0.0`, { method: "DELETE" })).status, 501);
    assert.equal((await get(`/v0.1/servers/${name}/status`, { method: "PATCH", body: "{}" })).status, 403);
    assert.equal((await get(`/v0.1/servers/${name}/versions/0.0.0/status`, { method: "PATCH", body: "{}" })).status, 403);
    const other = await get("/v0/servers");
    assert.equal(other.status, 404);
    assert.deepEqual(await other.json(), { error: "Not found" });
    const pre = await get("/v0.1/servers", { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "GET" } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), "*");
  });
});

test("registry.enabled false serves none; registry.path moves it", async () => {
  const off = await gateway(plugin(`{ registry: { enabled: false } }`), { "/mcp/a": route("a") });
  try {
    assert.equal((await fetch(`${off.url}/__zuplo/mcp-registry/v0.1/servers`)).status, 404);
    assert.equal(((await (await fetch(`${off.url}/__zuplo/mcp-registry/v0.1/servers`)).json()) as { code?: string }).code, "route_not_found");
  } finally {
    await off.close();
  }
  const moved = await gateway(plugin(`{ basePath: "/gw", registry: { path: "/catalog" } }`), { "/mcp/a": route("a") });
  try {
    const res = await fetch(`${moved.url}/catalog/v0.1/servers`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { metadata: { count: number } }).metadata.count, 1);
    assert.equal((await fetch(`${moved.url}/gw/mcp-registry/v0.1/servers`)).status, 404);
  } finally {
    await moved.close();
  }
});
