/**
 * Per-user upstream OAuth, end to end: official SDK client → gateway (JWT auth + token exchange)
 * → the OAuth-protected demo upstream (oidc-provider AS with DCR, official-SDK MCP server). The
 * browser part is the cookie-keeping test browser: dev login, the gateway's confirmation page,
 * the upstream's login, the callback.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startGateway, writeProject, type RunningGateway } from "../helpers/harness.js";
import { startOAuthUpstream, TestBrowser, type OAuthUpstream } from "../fixtures/oauth-upstream.js";
import { connectInBrowser, expectConnectRequired, projectFiles, sdkClient, startIdentity, whoami, type Identity } from "./upstream-oauth-kit.js";

let upstream: OAuthUpstream;
let identity: Identity;
let gw: RunningGateway;

before(async () => {
  upstream = await startOAuthUpstream({ registration: { dcr: true, cimd: false } });
  identity = await startIdentity();
  const dir = await writeProject(projectFiles(identity.jwks.url, upstream.mcpUrl));
  gw = await startGateway({ projectDir: dir, settings: { devLogin: true } });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  await identity?.close();
});

async function connectedClient(user: string) {
  const token = await identity.token(user);
  const first = sdkClient(gw.url, token);
  const authUrl = await expectConnectRequired(() => first.firstUse());
  await first.close();
  assert.match(authUrl, new RegExp(`^${gw.url}/__tollgate/auth/connections/notes/connect\\?redirect=true&operationId=[^&]+&browserTicket=`), authUrl);
  const page = await connectInBrowser(new TestBrowser(), authUrl, user);
  assert.equal(page.status, 200, page.text.slice(0, 500));
  assert.match(page.text, /Demo Notes is connected/);
  const c = sdkClient(gw.url, token);
  await c.connect();
  return c;
}

test("a user connects once in the browser; later calls use their own upstream account", async () => {
  const alice = await connectedClient("alice");
  try {
    assert.equal(await whoami(alice.client), "alice");
    const tools = await alice.client.listTools();
    assert.ok(tools.tools.some((t) => t.name === "whoami"));
  } finally {
    await alice.close();
  }
  assert.ok((upstream.tokenRequests.authorization_code ?? 0) >= 1);
  const auth = upstream.authorizationRequests.at(-1)!;
  assert.equal(auth.code_challenge_method, "S256");
  assert.equal(auth.resource, upstream.mcpUrl);
  assert.ok(auth.state && auth.state.length >= 20);
});

test("two users never see each other's upstream account", async () => {
  const bob = await connectedClient("bob");
  const alice = sdkClient(gw.url, await identity.token("alice"));
  await alice.connect();
  try {
    const [a, b] = await Promise.all([whoami(alice.client), whoami(bob.client)]);
    assert.equal(a, "alice");
    assert.equal(b, "bob");
  } finally {
    await alice.close();
    await bob.close();
  }
});

test("a connect link opened by another signed-in user is refused and binds nothing", async () => {
  const carol = sdkClient(gw.url, await identity.token("carol"));
  const authUrl = await expectConnectRequired(() => carol.firstUse());
  await carol.close();
  const mallory = new TestBrowser();
  // Mallory signs in to the gateway as herself, then opens Carol's link.
  const page = await mallory.walk(authUrl, { values: () => ({ username: "mallory" }) });
  assert.equal(page.status, 403);
  assert.match(page.text, /another account|different user/);
  const again = sdkClient(gw.url, await identity.token("carol"));
  await expectConnectRequired(() => again.firstUse());
  await again.close();
});

test("the inbound token never reaches the upstream; only upstream-issued tokens do", async () => {
  const token = await identity.token("alice");
  const alice = sdkClient(gw.url, token);
  await alice.connect();
  await whoami(alice.client);
  await alice.close();
  assert.ok(upstream.seenAuthorizations.length > 0);
  assert.ok(!upstream.seenAuthorizations.some((h) => h.includes(token)), "the MCP caller's JWT was forwarded upstream");
  assert.ok(!upstream.seenAuthorizations.some((h) => h.split(".").length === 3 && h.includes("eyJ")), "no JWT-looking credential upstream");
  const raw = gw.logs.join("\n");
  assert.ok(!raw.includes(token), "inbound token in the logs");
});

test("users list their connections and disconnect (revoked upstream), then must connect again", async () => {
  const browser = new TestBrowser();
  const dave = sdkClient(gw.url, await identity.token("dave"));
  const authUrl = await expectConnectRequired(() => dave.firstUse());
  await dave.close();
  await connectInBrowser(browser, authUrl, "dave");

  const list = await browser.fetch(`${gw.url}/__tollgate/api/connections`, { headers: { accept: "application/json" } });
  assert.equal(list.status, 200);
  const body = (await list.json()) as { user: { sub: string }; connections: Array<{ id: string; connected: boolean }> };
  assert.equal(body.user.sub, "dave");
  assert.deepEqual(
    body.connections.map((c) => [c.id, c.connected]),
    [["notes", true]],
  );
  assert.ok(!JSON.stringify(body).includes("access"), "no token material in the listing");

  const html = await browser.open(`${gw.url}/__tollgate/connections`);
  assert.equal(html.status, 200);
  const revokedBefore = upstream.revocationRequests;
  const done = await browser.submit(html, {}, { button: { name: "decision", value: "disconnect:notes" } });
  assert.equal(done.status, 200);
  assert.match(done.text, /Disconnected/);
  assert.ok(upstream.revocationRequests > revokedBefore, "tokens revoked at the upstream");

  const again = sdkClient(gw.url, await identity.token("dave"));
  await expectConnectRequired(() => again.firstUse());
  await again.close();
});

test("no secrets in the logs", () => {
  const raw = gw.logs.join("\n");
  assert.ok(!/"(access_token|refresh_token|code_verifier)":"[^[]/.test(raw));
  assert.ok(!/ticket=[A-Za-z0-9_-]{20}/.test(raw), "connect tickets logged");
  assert.ok(gw.logs.some((l) => l.includes('"event":"mcp_auth_upstream_connection_established"')));
  assert.ok(gw.logs.some((l) => l.includes('"event":"mcp_auth_upstream_connection_revoked"')));
});

test("connect-required on the wire: 2026-07-28 InputRequiredResult, SSE framing, notifications, batches", async () => {
  const token = await identity.token("frank");
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${gw.url}/mcp/notes`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      body: JSON.stringify(body),
    });
  const meta = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": { elicitation: { url: {} } },
    "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
  };
  const mrtr = await post({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {}, _meta: meta } }, { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "whoami" });
  assert.equal(mrtr.status, 200);
  const r = (await mrtr.json()) as { id: number; result: { resultType: string; inputRequests: Record<string, { method: string; params: { mode: string; url: string } }>; requestState: string } };
  assert.equal(r.result.resultType, "input_required");
  const req = Object.values(r.result.inputRequests)[0]!;
  assert.equal(req.method, "elicitation/create");
  assert.equal(req.params.mode, "url");
  assert.ok(req.params.url.startsWith(`${gw.url}/__tollgate/auth/connections/notes/connect?redirect=true&`));
  assert.ok(r.result.requestState);

  const sse = await post({ jsonrpc: "2.0", id: 2, method: "tools/list" }, { accept: "text/event-stream", "mcp-protocol-version": "2025-11-25" });
  assert.equal(sse.headers.get("content-type"), "text/event-stream");
  assert.match(await sse.text(), /^event: message\ndata: .*"code":-32042/);

  const note = await post({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 9 } }, { "mcp-protocol-version": "2025-11-25" });
  assert.equal(note.status, 202);

  const batch = await post(
    [
      { jsonrpc: "2.0", id: 10, method: "tools/list" },
      { jsonrpc: "2.0", id: 11, method: "tools/call", params: { name: "whoami" } },
    ],
    { "mcp-protocol-version": "2025-03-26" },
  );
  const answers = (await batch.json()) as Array<{ id: number; error: { code: number } }>;
  assert.deepEqual(answers.map((a) => [a.id, a.error.code]), [[10, -32042], [11, -32042]]);
});
