/**
 * Per-caller tool authorization in `mcp-capability-filter-inbound` (`accessControl`), end to
 * end: two users of a real OpenID provider (oidc-provider) with different roles and groups sign
 * in through the gateway's authorization server, and the official MCP SDK client of each sees a
 * different `tools/list` through the same route; a tool hidden from a user is refused on call.
 * The roles and groups reach the filter through the gateway's own tokens, which carry the claims
 * captured from the IdP's ID token at browser login.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { obtainTokens, startAuthEnv, type AuthEnv } from "../e2e/auth-server-helpers.js";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { startGateway, writeProject, type RunningGateway } from "../helpers/harness.js";

const FILTER = {
  name: "tools-by-role",
  policyType: "mcp-capability-filter-inbound",
  handler: {
    module: "$import(@zuplo/runtime/mcp-gateway)",
    export: "McpCapabilityFilterInboundPolicy",
    options: {
      accessControl: { mode: "rolesAndGroups", roleClaim: "roles", groupClaim: "groups" },
      tools: [
        { name: "echo", public: true },
        { name: "notify", groups: ["engineering"] },
        { name: "sleep", roles: ["admin"] },
        // Listed without markup: nobody may use it.
        "slow_progress",
      ],
    },
  },
};

async function connect(url: string, token: string): Promise<Client> {
  const client = new Client({ name: "access-control-test", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

describe("capability access control by IdP roles and groups", () => {
  let env: AuthEnv;
  before(async () => {
    env = await startAuthEnv({ extraPolicies: [FILTER], routeAExtraInbound: ["tools-by-role"] });
  });
  after(async () => {
    await env?.close();
  });

  test("alice (group engineering) and bob (role admin) see different tools; hidden tools are refused", async () => {
    const alice = await connect(env.routeA, String((await obtainTokens(env, env.routeA, "alice")).tokens.access_token));
    const bob = await connect(env.routeA, String((await obtainTokens(env, env.routeA, "bob")).tokens.access_token));
    try {
      const names = async (c: Client) => (await c.listTools()).tools.map((t) => t.name).sort();
      assert.deepEqual(await names(alice), ["echo", "notify"]);
      assert.deepEqual(await names(bob), ["echo", "sleep"]);
      // Markup is configuration, never shown.
      for (const t of (await alice.listTools()).tools) assert.ok(!("groups" in t) && !("roles" in t) && !("public" in t));

      const seenBefore = env.upstream.requests.length;
      await assert.rejects(alice.callTool({ name: "sleep", arguments: { ms: 1 } }), (err: unknown) => {
        assert.ok(err instanceof McpError);
        assert.equal(err.code, -32601);
        return true;
      });
      await assert.rejects(bob.callTool({ name: "slow_progress", arguments: {} }), (err: unknown) => err instanceof McpError && err.code === -32601);
      // Refused calls never reach the upstream.
      const called = env.upstream.requests.slice(seenBefore).map((r) => JSON.stringify(r.body));
      assert.ok(!called.some((b) => b.includes('"sleep"') || b.includes('"slow_progress"')), called.join("\n"));

      const echoed = await alice.callTool({ name: "echo", arguments: { text: "hi" } });
      assert.equal(echoed.isError, undefined);
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});

describe('accessControl mode "function": a project function decides', () => {
  let upstream: McpTestServer;
  let gw: RunningGateway;
  before(async () => {
    upstream = await startMcpTestServer({ mode: "stateless" });
    const dir = await writeProject({
      "modules/access.ts": `
        import type { AllowedCapabilities } from "@zuplo/runtime/mcp-gateway";
        export function allowed(request: Request): AllowedCapabilities | undefined {
          const plan = request.headers.get("x-plan");
          if (plan === "broken") throw new Error("directory unreachable");
          if (plan === "none") return undefined;
          // "not_configured" is not in the filter's list: clamped away.
          return plan === "pro" ? { tools: ["echo", "sleep", "not_configured"] } : { tools: ["echo"] };
        }
      `,
      "config/policies.json": JSON.stringify({
        policies: [
          {
            name: "by-plan",
            policyType: "mcp-capability-filter-inbound",
            handler: {
              module: "$import(@zuplo/runtime/mcp-gateway)",
              export: "McpCapabilityFilterInboundPolicy",
              options: {
                accessControl: { mode: "function", identifier: { module: "$import(./modules/access)", export: "allowed" } },
                tools: ["echo", "sleep", "notify"],
              },
            },
          },
        ],
      }),
      "config/routes.oas.json": JSON.stringify({
        openapi: "3.1.0",
        info: { title: "function mode", version: "1" },
        paths: {
          "/mcp": {
            post: {
              operationId: "plan-mcp",
              "x-zuplo-route": {
                corsPolicy: "none",
                handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: "McpProxyHandler", options: { rewritePattern: upstream.url } },
                policies: { inbound: ["by-plan"] },
              },
            },
          },
        },
      }),
    });
    gw = await startGateway({ projectDir: dir });
  });
  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const rpc = async (plan: string, method: string, params: object = {}) => {
    const res = await fetch(`${gw.url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18", "x-plan": plan },
      body: JSON.stringify({ jsonrpc: "2.0", id: 7, method, params }),
    });
    return (await res.json()) as { result?: { tools: Array<{ name: string }> }; error?: { code: number } };
  };
  const names = async (plan: string) => (await rpc(plan, "tools/list")).result!.tools.map((t) => t.name).sort();

  test("each answer narrows the configured list; throw or no answer hides everything", async () => {
    assert.deepEqual(await names("pro"), ["echo", "sleep"]);
    assert.deepEqual(await names("free"), ["echo"]);
    assert.deepEqual(await names("broken"), []);
    assert.deepEqual(await names("none"), []);
    assert.equal((await rpc("free", "tools/call", { name: "sleep", arguments: { ms: 0 } })).error?.code, -32601);
    assert.equal((await rpc("pro", "tools/call", { name: "sleep", arguments: { ms: 0 } })).error, undefined);
    assert.ok(gw.logs.some((l) => l.includes("capability access function failed")));
  });

  test("a missing function export is a load-time error with its JSON path", async () => {
    const { loadProject } = await import("../../src/project/load.js");
    const dir = await writeProject({
      "modules/access.ts": "export const notAFunction = 1;\n",
      "config/policies.json": JSON.stringify({
        policies: [
          {
            name: "f",
            policyType: "mcp-capability-filter-inbound",
            handler: {
              module: "$import(@zuplo/runtime/mcp-gateway)",
              export: "McpCapabilityFilterInboundPolicy",
              options: { accessControl: { mode: "function", identifier: { module: "$import(./modules/access)", export: "allowed" } } },
            },
          },
        ],
      }),
    });
    await assert.rejects(loadProject(dir, { env: {} }), (err: Error & { issues?: Array<{ path: string; message: string }> }) => {
      const i = err.issues?.find((x) => x.path.includes("accessControl.identifier"));
      assert.ok(i, JSON.stringify(err.issues));
      assert.match(i.path, /policies\[0\]\.handler\.options\.accessControl\.identifier\.export/);
      assert.match(i.message, /has no export "allowed"/);
      return true;
    });
  });
});
