/**
 * McpProxyHandler end to end: on authenticated routes `Mcp-Session-Id` is bound to the caller
 * (`<upstream id>.<tag>`), so a session id learned by another user opens nothing; anonymous
 * routes pass the upstream's id through unchanged.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startGateway, type RunningGateway } from "../helpers/harness.js";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { generateKey } from "../../src/store/crypto.js";
import { sessionCapabilities } from "../../src/mcp/messages.js";
import { MCP_POST_HEADERS, initializeBody, proxyProject, rawRequest, rpc, type RawResponse } from "./mcp-proxy-helpers.js";

/**
 * A stand-in for an authentication policy: the test names the caller in `x-test-user`, and the
 * policy turns it into `request.user` (a real deployment would validate a token instead).
 */
const IDENTITY_POLICY = `
export function testIdentity(request) {
  const sub = request.headers.get("x-test-user");
  if (!sub) return new Response("who are you?", { status: 401 });
  request.user = { sub, data: {} };
  return request;
}
`;

const BOUND = /^(.+)\.([A-Za-z0-9_-]{22})$/;
const KEY = generateKey();

let upstream: McpTestServer;
let gw: RunningGateway;
let twin: RunningGateway;
let rotated: RunningGateway;
let alice: { client: Client; transport: StreamableHTTPClientTransport } | undefined;

before(async () => {
  upstream = await startMcpTestServer({ mode: "stateful" });
  const dir = await proxyProject(
    [
      { path: "/auth", options: { rewritePattern: upstream.url }, inbound: ["identity"] },
      { path: "/auth2", options: { rewritePattern: upstream.url }, inbound: ["identity"] },
      { path: "/anon", options: { rewritePattern: upstream.url } },
    ],
    [{ name: "identity", policyType: "custom-code-inbound", handler: { module: "$import(./modules/identity)", export: "testIdentity" } }],
    { "modules/identity.ts": IDENTITY_POLICY },
  );
  // Two instances sharing one encryption key, and one whose key was rotated.
  [gw, twin, rotated] = await Promise.all([
    startGateway({ projectDir: dir, env: { TOLLGATE_ENCRYPTION_KEY: KEY } }),
    startGateway({ projectDir: dir, env: { TOLLGATE_ENCRYPTION_KEY: KEY } }),
    startGateway({ projectDir: dir, env: { TOLLGATE_ENCRYPTION_KEY: `old:${KEY},new:${generateKey()}` } }),
  ]);
});

after(async () => {
  await alice?.client.close().catch(() => {});
  await Promise.all([gw?.close(), twin?.close(), rotated?.close()]);
  await upstream?.close();
});

async function connect(user: string, base = gw.url, path = "/auth") {
  const client = new Client({ name: "sessions-e2e", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${base}${path}`), { requestInit: { headers: { "x-test-user": user } } });
  await client.connect(transport);
  return { client, transport };
}

/** Splits a bound id, asserting its shape; returns the upstream id. */
function rawOf(bound: string | undefined): string {
  const m = BOUND.exec(bound ?? "");
  assert.ok(m, `bound session id expected, got ${bound}`);
  return m[1]!;
}

const send = (base: string, path: string, user: string | undefined, sid: string, method = "POST", body?: string): Promise<RawResponse> =>
  rawRequest(`${base}${path}`, {
    method,
    headers: {
      ...MCP_POST_HEADERS,
      "mcp-protocol-version": "2025-11-25",
      "mcp-session-id": sid,
      ...(user ? { "x-test-user": user } : {}),
    },
    body: body ?? (method === "POST" ? rpc("tools/list", {}, 7) : undefined),
  });

const seenFrom = (user: string) => upstream.requests.filter((r) => r.headers["x-test-user"] === user).length;

function assertSessionNotFound(res: RawResponse, what: string): void {
  assert.equal(res.status, 404, what);
  assert.match(String(res.headers["content-type"]), /^application\/problem\+json/, what);
  assert.equal((JSON.parse(res.body) as { code: string }).code, "session_not_found", what);
}

describe("session binding on an authenticated route", () => {
  test("the official client runs a whole session on the bound id; the upstream sees its own id", async () => {
    const { client, transport } = await connect("carol");
    const bound = transport.sessionId;
    const raw = rawOf(bound);
    assert.ok(upstream.sessionIds().includes(raw), "the upstream issued the raw id");
    assert.ok(!upstream.sessionIds().includes(bound!), "the upstream never issued the bound id");
    assert.equal(sessionCapabilities.get(bound!)?.version, "2025-11-25", "capabilities are remembered under the client's id");
    assert.equal(sessionCapabilities.get(raw), undefined);

    const tools = await client.listTools();
    assert.ok(tools.tools.some((t) => t.name === "echo"));
    const echoed = await client.callTool({ name: "echo", arguments: { text: "bound hello" } });
    assert.deepEqual(echoed.content, [{ type: "text", text: "bound hello" }]);
    const call = upstream.requests.find((r) => r.body.includes('"bound hello"'));
    assert.equal(call?.headers["mcp-session-id"], raw);
    for (const r of upstream.requests.filter((x) => x.headers["x-test-user"] === "carol" && x.headers["mcp-session-id"] !== undefined)) {
      assert.equal(r.headers["mcp-session-id"], raw, `${r.method} carried the raw id upstream`);
    }

    await transport.terminateSession();
    const del = upstream.requests.find((r) => r.method === "DELETE" && r.headers["x-test-user"] === "carol");
    assert.equal(del?.headers["mcp-session-id"], raw);
    assert.ok(!upstream.sessionIds().includes(raw), "DELETE ended the upstream session");
    assert.equal(sessionCapabilities.get(bound!), undefined, "DELETE forgot the capabilities");
    await client.close();
  });

  test("another user replaying the session id gets 404 and the upstream never hears of it", async () => {
    alice = await connect("alice");
    const bound = alice.transport.sessionId!;
    const raw = rawOf(bound);
    assert.equal((await send(gw.url, "/auth", "alice", bound)).status, 200, "the owner may use it");

    const before = seenFrom("mallory");
    assertSessionNotFound(await send(gw.url, "/auth", "mallory", bound), "POST");
    assertSessionNotFound(await send(gw.url, "/auth", "mallory", bound, "GET"), "GET");
    assertSessionNotFound(await send(gw.url, "/auth", "mallory", bound, "DELETE"), "DELETE");
    assert.equal(seenFrom("mallory"), before, "no request of the other user reached the upstream");
    assert.ok(upstream.sessionIds().includes(raw), "the session survived the replay");
    const tools = await alice.client.listTools();
    assert.ok(tools.tools.length > 0, "the owner's session still works");
  });

  test("a missing, forged or moved tag gets 404 without contacting the upstream", async () => {
    const bound = alice!.transport.sessionId!;
    const raw = rawOf(bound);
    const tag = bound.slice(raw.length + 1);
    const forged = `${raw}.${tag[0] === "A" ? "B" : "A"}${tag.slice(1)}`;
    const before = upstream.requests.length;
    assertSessionNotFound(await send(gw.url, "/auth", "alice", raw), "upstream id without a tag");
    assertSessionNotFound(await send(gw.url, "/auth", "alice", forged), "forged tag");
    assertSessionNotFound(await send(gw.url, "/auth", "alice", `${raw}.`), "empty tag");
    assertSessionNotFound(await send(gw.url, "/auth2", "alice", bound), "same user, other route");
    assert.equal(upstream.requests.length, before, "none of them reached the upstream");
  });

  test("a second instance with the same key accepts the id; a rotated key ends the session", async () => {
    const bound = alice!.transport.sessionId!;
    const raw = rawOf(bound);
    const res = await send(twin.url, "/auth", "alice", bound, "POST", rpc("tools/call", { name: "echo", arguments: { text: "via twin" } }, 8));
    assert.equal(res.status, 200);
    assert.match(res.body, /via twin/);
    assert.equal(res.headers["mcp-session-id"], bound, "the twin hands back the same bound id");
    const call = upstream.requests.find((r) => r.body.includes('"via twin"'));
    assert.equal(call?.headers["mcp-session-id"], raw);

    const before = upstream.requests.length;
    assertSessionNotFound(await send(rotated.url, "/auth", "alice", bound), "after key rotation");
    assert.equal(upstream.requests.length, before);
  });
});

describe("anonymous routes", () => {
  test("pass the upstream's session id through unchanged", async () => {
    const init = await rawRequest(`${gw.url}/anon`, { headers: MCP_POST_HEADERS, body: initializeBody() });
    assert.equal(init.status, 200);
    const sid = init.headers["mcp-session-id"];
    assert.ok(typeof sid === "string" && upstream.sessionIds().includes(sid), "the client holds the upstream's own id");
    const res = await send(gw.url, "/anon", undefined, sid);
    assert.equal(res.status, 200);
    const seen = upstream.requests.at(-1);
    assert.equal(seen?.headers["mcp-session-id"], sid);
    assert.equal((await send(gw.url, "/anon", undefined, sid, "DELETE")).status, 200);
  });
});
