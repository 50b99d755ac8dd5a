/**
 * No credential passthrough, whatever header carries it: for every built-in auth policy (default
 * and custom `authHeader`), the MCP OAuth policy and a custom policy that marks its own header
 * (`context.consumeCredentialHeader`), the caller's key or token never reaches the upstream (the
 * official MCP SDK client and server on both ends). An upstream credential set for the same
 * header name still gets through.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startGateway, type RunningGateway } from "../helpers/harness.js";
import { startMcpTestServer, type McpTestServer, type RecordedRequest } from "../fixtures/mcp-servers.js";
import { makeKey, sign, startJwksServer, type JwksServer, type TestKey } from "../helpers/jwks-fixture.js";
import { MCP_POST_HEADERS, proxyProject, rawRequest, rpc } from "./mcp-proxy-helpers.js";

const AGENT_KEY = "agent-key-0123456789abcdef";
const PARTNER_KEY = "partner-key-0123456789abcdef";
const WRONG_KEY = "wrong-key-00000000000000000";
const UPSTREAM_KEY = "upstream-key-fedcba9876543210";
const CUSTOM_TOKEN = "custom-token-0123456789abcdef";
const ISSUER = "https://idp.test/";
const AUDIENCE = "tollgate-test";

/** Authenticates from `x-custom-token` and marks that header as consumed. */
const CUSTOM_POLICY = `
export function customToken(request, context) {
  context.consumeCredentialHeader("X-Custom-Token");
  if (request.headers.get("x-custom-token") !== "${CUSTOM_TOKEN}") return new Response("no", { status: 401 });
  request.user = { sub: "custom-caller", data: {} };
  return request;
}
`;

const runtime = (exportName: string, options: Record<string, unknown>) => ({ module: "$import(@zuplo/runtime)", export: exportName, options });
const consumers = [{ name: "agent", key: "$env(AGENT_KEY)" }];

let upstream: McpTestServer;
let jwks: JwksServer;
let key: TestKey;
let gw: RunningGateway;
let token: string;

before(async () => {
  upstream = await startMcpTestServer({ mode: "stateless" });
  key = await makeKey("k1", "ES256");
  jwks = await startJwksServer([key]);
  token = await sign(key, { iss: ISSUER, aud: AUDIENCE, sub: "alice" });
  const jwt = { issuer: ISSUER, audience: AUDIENCE, jwkUrl: jwks.url };
  const policies = [
    { name: "key-default", policyType: "api-key-inbound", handler: runtime("ApiKeyInboundPolicy", { consumers }) },
    { name: "key-x", policyType: "api-key-inbound", handler: runtime("ApiKeyInboundPolicy", { consumers, authHeader: "x-api-key", authScheme: "" }) },
    {
      name: "key-scheme",
      policyType: "api-key-inbound",
      handler: runtime("ApiKeyInboundPolicy", {
        consumers: [{ name: "partner", key: "$env(PARTNER_KEY)" }],
        authHeader: "X-Partner-Auth",
        authScheme: "Token",
      }),
    },
    {
      name: "key-optional",
      policyType: "api-key-inbound",
      handler: runtime("ApiKeyInboundPolicy", { consumers, authHeader: "x-api-key", authScheme: "", allowUnauthenticatedRequests: true }),
    },
    {
      name: "upstream-x",
      policyType: "set-upstream-api-key-inbound",
      handler: runtime("SetUpstreamApiKeyInboundPolicy", { value: "$env(UPSTREAM_KEY)", header: "x-api-key", overwrite: false }),
    },
    { name: "jwt-default", policyType: "open-id-jwt-auth-inbound", handler: runtime("OpenIdJwtInboundPolicy", jwt) },
    { name: "jwt-x", policyType: "open-id-jwt-auth-inbound", handler: runtime("OpenIdJwtInboundPolicy", { ...jwt, authHeader: "x-auth-token" }) },
    {
      name: "oauth",
      policyType: "mcp-oauth-inbound",
      handler: {
        module: "$import(@zuplo/runtime/mcp-gateway)",
        export: "McpOAuthInboundPolicy",
        options: { oidc: { issuer: ISSUER, jwksUrl: jwks.url, bearerAudience: AUDIENCE } },
      },
    },
    { name: "custom", policyType: "custom-code-inbound", handler: { module: "$import(./modules/custom)", export: "customToken", options: {} } },
  ];
  const route = (path: string, inbound: string[]) => ({ path, options: { rewritePattern: upstream.url }, inbound });
  const dir = await proxyProject(
    [
      route("/key-default", ["key-default"]),
      route("/key-x", ["key-x"]),
      route("/key-scheme", ["key-scheme"]),
      route("/key-optional", ["key-optional"]),
      route("/key-x-upstream", ["key-x", "upstream-x"]),
      route("/jwt-default", ["jwt-default"]),
      route("/jwt-x", ["jwt-x"]),
      route("/oauth", ["oauth"]),
      route("/custom", ["custom"]),
    ],
    policies,
    { "modules/custom.ts": CUSTOM_POLICY },
  );
  gw = await startGateway({
    projectDir: dir,
    env: { AGENT_KEY, PARTNER_KEY, UPSTREAM_KEY },
    settings: { devLogin: true },
  });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  await jwks?.close();
});

/** Every header value and body the upstream received since `from`, as one string per request. */
function seenSince(from: number): RecordedRequest[] {
  return upstream.requests.slice(from);
}

function assertNoSecret(requests: RecordedRequest[], secrets: string[]): void {
  for (const r of requests) {
    const all = `${JSON.stringify(r.headers)}\n${r.body}`;
    for (const s of secrets) assert.ok(!all.includes(s), `the upstream saw a caller credential in ${r.method} ${r.url}`);
  }
}

/** Connects with the official SDK client, lists and calls a tool, and returns what the upstream saw. */
async function session(path: string, headers: Record<string, string>): Promise<RecordedRequest[]> {
  const from = upstream.requests.length;
  const client = new Client({ name: "credential-headers", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}${path}`), { requestInit: { headers } }));
  try {
    assert.ok((await client.listTools()).tools.some((t) => t.name === "echo"));
    const echoed = await client.callTool({ name: "echo", arguments: { text: "hi" } });
    assert.deepEqual(echoed.content, [{ type: "text", text: "hi" }]);
  } finally {
    await client.close();
  }
  const seen = seenSince(from);
  assert.ok(seen.length >= 3, "initialize, tools/list and tools/call reached the upstream");
  return seen;
}

describe("credential headers never reach the upstream", () => {
  const cases: Array<[string, () => Record<string, string>, () => string]> = [
    ["/key-default", () => ({ authorization: `Bearer ${AGENT_KEY}` }), () => AGENT_KEY],
    ["/key-x", () => ({ "x-api-key": AGENT_KEY }), () => AGENT_KEY],
    ["/key-scheme", () => ({ "x-partner-auth": `Token ${PARTNER_KEY}` }), () => PARTNER_KEY],
    ["/jwt-default", () => ({ authorization: `Bearer ${token}` }), () => token],
    ["/jwt-x", () => ({ "x-auth-token": `Bearer ${token}` }), () => token],
    ["/oauth", () => ({ authorization: `Bearer ${token}` }), () => token],
    ["/custom", () => ({ "x-custom-token": CUSTOM_TOKEN }), () => CUSTOM_TOKEN],
  ];
  for (const [path, headers, secret] of cases) {
    test(`${path}: ${Object.keys(headers())[0]} is consumed by the gateway`, async () => {
      const seen = await session(path, headers());
      assertNoSecret(seen, [secret()]);
      for (const r of seen) assert.equal(r.headers[Object.keys(headers())[0]!], undefined);
    });
  }

  test("an upstream credential for the same header name is still sent (and the caller's is not)", async () => {
    const seen = await session("/key-x-upstream", { "x-api-key": AGENT_KEY });
    assertNoSecret(seen, [AGENT_KEY]);
    for (const r of seen) assert.equal(r.headers["x-api-key"], UPSTREAM_KEY);
  });

  test("a key that fails on an optional-auth route is not forwarded either", async () => {
    const from = upstream.requests.length;
    const res = await rawRequest(`${gw.url}/key-optional`, {
      headers: { ...MCP_POST_HEADERS, "mcp-protocol-version": "2025-11-25", "x-api-key": WRONG_KEY },
      body: rpc("tools/list"),
    });
    assert.equal(res.status, 200);
    const seen = seenSince(from);
    assert.equal(seen.length, 1);
    assertNoSecret(seen, [WRONG_KEY]);
  });

  test("other custom headers still travel", async () => {
    const from = upstream.requests.length;
    const res = await rawRequest(`${gw.url}/key-x`, {
      headers: { ...MCP_POST_HEADERS, "mcp-protocol-version": "2025-11-25", "x-api-key": AGENT_KEY, "x-trace": "t-1" },
      body: rpc("tools/list"),
    });
    assert.equal(res.status, 200);
    const [seen] = seenSince(from);
    assert.equal(seen?.headers["x-trace"], "t-1");
    assert.equal(seen?.headers["x-api-key"], undefined);
  });
});
