/**
 * The built-in non-OAuth policies on a real gateway in front of real MCP servers (official SDK
 * client and server): API-key auth, a static upstream credential, the capability filter on SSE
 * and JSON answers, rate limiting, and JWT auth with its protected resource metadata.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { startGateway, type RunningGateway } from "../helpers/harness.js";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { proxyProject } from "./mcp-proxy-helpers.js";
import { makeKey, sign, startJwksServer, type JwksServer, type TestKey } from "../helpers/jwks-fixture.js";

const AGENT_KEY = "agent-key-0123456789abcdef";
const UPSTREAM_KEY = "upstream-key-fedcba9876543210";
const ISSUER = "https://idp.test/";
const AUDIENCE = "tollgate-test";

let sse: McpTestServer;
let json: McpTestServer;
let jwks: JwksServer;
let key: TestKey;
let gw: RunningGateway;

before(async () => {
  sse = await startMcpTestServer({ mode: "stateful", bearer: UPSTREAM_KEY });
  json = await startMcpTestServer({ mode: "stateless" });
  key = await makeKey("k1", "ES256");
  jwks = await startJwksServer([key]);
  const policies = [
    {
      name: "keys",
      policyType: "api-key-inbound",
      handler: {
        module: "$import(@zuplo/runtime)",
        export: "ApiKeyInboundPolicy",
        options: { consumers: [{ name: "agent", key: "$env(AGENT_KEY)", metadata: { team: "qa" } }] },
      },
    },
    {
      name: "upstream-key",
      policyType: "set-upstream-api-key-inbound",
      handler: { module: "$import(@zuplo/runtime)", export: "SetUpstreamApiKeyInboundPolicy", options: { value: "Bearer $env(UPSTREAM_KEY)" } },
    },
    {
      name: "filter",
      policyType: "mcp-capability-filter-inbound",
      handler: {
        module: "$import(@zuplo/runtime/mcp-gateway)",
        export: "McpCapabilityFilterInboundPolicy",
        options: { tools: ["echo", { name: "notify", description: "Projected description" }] },
      },
    },
    {
      name: "limit",
      policyType: "rate-limit-inbound",
      handler: {
        module: "$import(@zuplo/runtime)",
        export: "RateLimitInboundPolicy",
        options: { rateLimitBy: "user", requestsAllowed: 1000, timeWindowMinutes: 1 },
      },
    },
    {
      name: "jwt",
      policyType: "open-id-jwt-auth-inbound",
      handler: {
        module: "$import(@zuplo/runtime)",
        export: "OpenIdJwtInboundPolicy",
        options: { issuer: ISSUER, audience: AUDIENCE, jwkUrl: jwks.url },
      },
    },
  ];
  const dir = await proxyProject(
    [
      { path: "/mcp/sse", options: { rewritePattern: sse.url }, inbound: ["keys", "limit", "upstream-key", "filter"] },
      { path: "/mcp/json", options: { rewritePattern: json.url }, inbound: ["keys", "filter"] },
      { path: "/mcp/jwt", options: { rewritePattern: json.url }, inbound: ["jwt", "filter"] },
    ],
    policies,
  );
  gw = await startGateway({ projectDir: dir, env: { AGENT_KEY, UPSTREAM_KEY } });
});

after(async () => {
  await gw?.close();
  await sse?.close();
  await json?.close();
  await jwks?.close();
});

async function connect(path: string, authorization: string): Promise<Client> {
  const client = new Client({ name: "policies-e2e", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}${path}`), {
    requestInit: { headers: { authorization } },
  });
  await client.connect(transport);
  return client;
}

async function expectMethodNotFound(p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof McpError && err.code === -32601);
}

describe("built-in policies through the MCP proxy", () => {
  for (const path of ["/mcp/sse", "/mcp/json"]) {
    test(`${path}: api key in, static key upstream, hidden tools filtered and refused`, async () => {
      const upstream = path === "/mcp/sse" ? sse : json;
      const client = await connect(path, `Bearer ${AGENT_KEY}`);
      try {
        const tools = await client.listTools();
        assert.deepEqual(tools.tools.map((t) => t.name).sort(), ["echo", "notify"]);
        assert.equal(tools.tools.find((t) => t.name === "notify")?.description, "Projected description");
        const echoed = await client.callTool({ name: "echo", arguments: { text: "hi" } });
        assert.deepEqual(echoed.content, [{ type: "text", text: "hi" }]);
        const before = upstream.requests.length;
        await expectMethodNotFound(client.callTool({ name: "sleep", arguments: { ms: 1 } }));
        assert.equal(upstream.requests.length, before, "the refused call never reached the upstream");
        assert.ok(!upstream.requests.some((r) => r.body.includes('"sleep"')));
        assert.ok(upstream.requests.every((r) => r.headers.authorization !== `Bearer ${AGENT_KEY}`), "the caller's key is not forwarded");
        if (path === "/mcp/sse") assert.ok(upstream.requests.every((r) => r.headers.authorization === `Bearer ${UPSTREAM_KEY}`));
      } finally {
        await client.close();
      }
    });
  }

  test("a wrong API key is refused before the upstream", async () => {
    const before = json.requests.length;
    const res = await fetch(`${gw.url}/mcp/json`, {
      method: "POST",
      headers: { authorization: "Bearer wrong-key-0000000000000", "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    assert.equal(json.requests.length, before);
  });

  test("JWT route: 401 points at the resource metadata, which names the IdP; a signed token works", async () => {
    const res = await fetch(`${gw.url}/mcp/jwt`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    assert.equal(res.status, 401);
    const prmUrl = `${gw.url}/.well-known/oauth-protected-resource/mcp/jwt`;
    assert.equal(res.headers.get("www-authenticate"), `Bearer resource_metadata="${prmUrl}"`);
    const prm = (await (await fetch(prmUrl)).json()) as Record<string, unknown>;
    assert.equal(prm.resource, `${gw.url}/mcp/jwt`);
    assert.deepEqual(prm.authorization_servers, [ISSUER]);

    const token = await sign(key, { iss: ISSUER, aud: AUDIENCE, sub: "alice" });
    const client = await connect("/mcp/jwt", `Bearer ${token}`);
    try {
      assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ["echo", "notify"]);
    } finally {
      await client.close();
    }
  });

  test("JWT route: a token issued 5 minutes in the future (or not valid before then) is refused before the upstream", async () => {
    const future = Date.now() + 300_000;
    const tokens = [
      await sign(key, { iss: ISSUER, aud: AUDIENCE, sub: "alice" }, { nowMs: future }),
      await sign(key, { iss: ISSUER, aud: AUDIENCE, sub: "alice", nbf: Math.floor(future / 1000) }),
    ];
    const before = json.requests.length;
    for (const token of tokens) {
      const res = await fetch(`${gw.url}/mcp/jwt`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
      });
      assert.equal(res.status, 401);
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer error="invalid_token", resource_metadata="/);
    }
    assert.equal(json.requests.length, before);
  });
});
