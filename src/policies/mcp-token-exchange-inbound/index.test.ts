import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { silentLogger } from "../../log.js";
import { grantKey } from "../../oauth/grants.js";
import { upstreamOAuthState } from "../../oauth/registry.js";
import type { GatewayServices } from "../../pipeline/services.js";
import { GatewayRequest, type GatewayContext, type RouteConfig } from "../../pipeline/types.js";
import type { Store } from "../../store/types.js";
import { testServices } from "../../../test/helpers/test-kit.js";
import type { BuildInit } from "../registry.js";
import { createTokenExchange } from "./index.js";
import { tokenExchangeOptionsSchema } from "./options.js";

const route: RouteConfig = {
  path: "/mcp/linear",
  methods: ["GET", "POST"],
  operationId: "linear-mcp",
  corsPolicy: undefined,
  handler: { module: "@zuplo/runtime/mcp-gateway", export: "McpProxyHandler", options: { rewritePattern: "http://127.0.0.1:9/mcp" } },
  policies: { inbound: ["auth", "mcp-token-exchange-linear"], outbound: [] },
  mcp: true,
};

let services: ReturnType<typeof testServices>;
let storeCalls: string[] = [];
const policies: Array<{ close(): Promise<void> }> = [];

before(() => {
  services = testServices({ settings: { publicUrl: "https://gw.example.com" } });
  const store = services.store;
  services.store = new Proxy(store, {
    get(t, p, r) {
      const v = Reflect.get(t, p, r);
      return typeof v === "function" ? (...a: unknown[]) => (storeCalls.push(String(p)), (v as (...x: unknown[]) => unknown).apply(t, a)) : v;
    },
  }) as Store;
});
after(async () => {
  for (const p of policies) await p.close();
  await services.close();
});

async function build(raw: Record<string, unknown>, name = "mcp-token-exchange-linear") {
  const init: BuildInit = { name, services: services as GatewayServices, routes: [route], usedBy: [route], policies: [] };
  const p = await createTokenExchange(tokenExchangeOptionsSchema.parse(raw), init);
  policies.push(p);
  return p;
}

function ctx(): GatewayContext {
  return {
    requestId: "r1",
    log: silentLogger,
    route,
    custom: {},
    signal: new AbortController().signal,
    services,
    remoteAddress: "127.0.0.1",
    upstreamHeaders: {},
    upstreamAuth: undefined,
    credentialHeaders: new Set(),
    consumeCredentialHeader() {},
    addResponseSendingHook() {},
    waitUntil() {},
  };
}

function post(body: unknown, headers: Record<string, string> = {}, sub: string | null = "alice"): GatewayRequest {
  const raw = new TextEncoder().encode(JSON.stringify(body));
  return new GatewayRequest("https://gw.example.com/mcp/linear", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    rawBody: raw,
    ...(sub ? { user: { sub, data: {} } } : {}),
  });
}

async function seed(sub: string | undefined, token = "upstream-token-0123456789") {
  await upstreamOAuthState(services).grants.write(
    grantKey("linear", sub),
    {
      upstreamId: "linear",
      mode: sub ? "user" : "shared",
      subject: sub ?? "root",
      issuer: "https://as.example.com",
      clientId: "c1",
      resource: "http://127.0.0.1:9/mcp",
      scopes: [],
      grantedScope: undefined,
      expiresAt: services.now() + 3_600_000,
      obtainedAt: services.now(),
      hasRefreshToken: true,
      createdAt: services.now(),
      refreshedAt: undefined,
      stepUps: 0,
    },
    { accessToken: token, refreshToken: "rt", tokenType: "bearer", expiresAt: services.now() + 3_600_000, scope: undefined },
  );
}

test("without a grant: connect-required with a single-use ticket bound to the caller", async () => {
  const policy = await build({ displayName: "Linear", authMode: "user-oauth" });
  const out = await policy(post({ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "x" } }), ctx(), {}, "p");
  assert.ok(out instanceof Response);
  const body = (await out.json()) as { id: number; error: { code: number; data: { authUrl: string; state: string } } };
  assert.equal(body.id, 3);
  assert.equal(body.error.code, -32042);
  assert.equal(body.error.data.state, "authenticating");
  assert.match(body.error.data.authUrl, /^https:\/\/gw\.example\.com\/__tollgate\/auth\/connections\/linear\/connect\?redirect=true&operationId=[^&]+&browserTicket=[A-Za-z0-9_-]{43}$/);
  const ticket = new URL(body.error.data.authUrl).searchParams.get("browserTicket")!;
  const tickets = await services.store.list<{ subject: string; upstreamId: string; operationId: string }>("connect-tickets");
  const mine = tickets.find((t) => t.value.subject === "alice")!;
  assert.deepEqual([mine.value.upstreamId, mine.value.operationId], ["linear", "linear-mcp"]);
  assert.notEqual(mine.key, ticket, "tickets are stored under their hash");
});

test("without a grant the gateway answers the handshake itself: initialize, ping, notifications", async () => {
  const policy = await build({ displayName: "Linear", authMode: "user-oauth" });
  const init = await policy(post({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "c", version: "1" } } }), ctx(), {}, "p");
  assert.ok(init instanceof Response);
  const sid = init.headers.get("mcp-session-id");
  assert.match(sid ?? "", /^tollgate-deferred-[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/, "a deferred session id, bound to the caller");
  const body = (await init.json()) as { id: number; result: { protocolVersion: string; capabilities: Record<string, unknown>; instructions: string } };
  assert.equal(body.id, 1);
  assert.equal(body.result.protocolVersion, "2025-06-18");
  assert.deepEqual(Object.keys(body.result.capabilities).sort(), ["prompts", "resources", "tools"]);
  assert.match(body.result.instructions, /Linear is not connected for your account yet\. Connect it at https:\/\/gw\.example\.com\/__tollgate\/connections/);
  const records = await services.store.list<{ sub: string; routeId: string }>("mcp-deferred-sessions");
  assert.ok(records.some((r) => r.value.sub === "alice" && r.value.routeId === "linear-mcp"));

  const notified = await policy(post({ jsonrpc: "2.0", method: "notifications/initialized" }, { "mcp-session-id": sid! }), ctx(), {}, "p");
  assert.ok(notified instanceof Response);
  assert.equal(notified.status, 202);
  const ping = await policy(post({ jsonrpc: "2.0", id: 2, method: "ping" }, { "mcp-session-id": sid! }), ctx(), {}, "p");
  assert.ok(ping instanceof Response);
  assert.deepEqual(await ping.json(), { jsonrpc: "2.0", id: 2, result: {} });
  const list = await policy(post({ jsonrpc: "2.0", id: 3, method: "tools/list" }, { "mcp-session-id": sid! }), ctx(), {}, "p");
  assert.ok(list instanceof Response);
  const err = ((await list.json()) as { error: { code: number; message: string } }).error;
  assert.equal(err.code, -32042);
  assert.match(err.message, /Open this link: https:\/\/gw\.example\.com\/__tollgate\/auth\/connections\/linear\/connect\?redirect=true&/);
});

test("without a grant, GET and unparseable bodies go to the upstream without a credential; its 401 asks to connect", async () => {
  const policy = await build({ displayName: "Linear", authMode: "user-oauth" });
  const c = ctx();
  const get = new GatewayRequest("https://gw.example.com/mcp/linear", { method: "GET", headers: { accept: "text/event-stream" }, user: { sub: "alice", data: {} } });
  const out = await policy(get, c, {}, "p");
  assert.ok(out instanceof GatewayRequest);
  assert.equal(c.upstreamHeaders.authorization, undefined);
  assert.ok(c.upstreamAuth, "401 hook installed");
  const answer = await c.upstreamAuth!.onUnauthorized({ status: 401, wwwAuthenticate: 'Bearer resource_metadata="http://127.0.0.1:9/prm"' });
  assert.ok(answer instanceof Response);
  assert.equal(answer.status, 403);
  assert.equal(((await answer.json()) as { code: string }).code, "upstream_connect_required");
});

test("with a grant: the upstream token from memory, no store round trip, never the caller's token", async () => {
  const policy = await build({ displayName: "Linear", authMode: "user-oauth" });
  await seed("bob");
  const first = ctx();
  await policy(post({ jsonrpc: "2.0", id: 1, method: "tools/list" }, { authorization: "Bearer inbound-jwt" }, "bob"), first, {}, "p");
  assert.equal(first.upstreamHeaders.authorization, "Bearer upstream-token-0123456789");
  storeCalls = [];
  for (let i = 0; i < 3; i++) {
    const c = ctx();
    await policy(post({ jsonrpc: "2.0", id: i, method: "tools/call" }, {}, "bob"), c, {}, "p");
    assert.equal(c.upstreamHeaders.authorization, "Bearer upstream-token-0123456789");
  }
  assert.deepEqual(storeCalls, []);
});

test("an MRTR retry carrying the gateway's own requestState is cleaned before forwarding", async () => {
  const policy = await build({ displayName: "Linear", authMode: "user-oauth" });
  await seed("carol");
  const out = await policy(
    post(
      {
        jsonrpc: "2.0",
        id: 2,
        method: "tools/call",
        params: {
          name: "x",
          requestState: "tollgate-connect.e1",
          inputResponses: { tollgate_connect_linear: { action: "accept" }, other: { action: "accept" } },
        },
      },
      {},
      "carol",
    ),
    ctx(),
    {},
    "p",
  );
  assert.ok(out instanceof GatewayRequest);
  const sent = JSON.parse(new TextDecoder().decode(await out.rawBytes())) as { params: Record<string, unknown> };
  assert.deepEqual(sent.params, { name: "x", inputResponses: { other: { action: "accept" } } });
});

test("2026-07-28 clients get an InputRequiredResult on tools/call", async () => {
  const policy = await build({ displayName: "Linear", authMode: "user-oauth" });
  const meta = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": { elicitation: { url: {} } },
  };
  const out = (await policy(
    post({ jsonrpc: "2.0", id: 5, method: "tools/call", params: { name: "x", _meta: meta } }, { "mcp-protocol-version": "2026-07-28" }, "dora"),
    ctx(),
    {},
    "p",
  )) as Response;
  const body = (await out.json()) as { result: { resultType: string; inputRequests: Record<string, { params: { url: string } }> } };
  assert.equal(body.result.resultType, "input_required");
  assert.match(body.result.inputRequests.tollgate_connect_linear!.params.url, /connect\?.*browserTicket=/);
});

test("shared mode: admin_connect_required without a link until an admin connects", async () => {
  const policy = await build({ id: "linear", displayName: "Linear", authMode: "shared-oauth" }, "mcp-token-exchange-shared");
  const out = (await policy(post({ jsonrpc: "2.0", id: 1, method: "tools/call" }), ctx(), {}, "p")) as Response;
  const body = (await out.json()) as { error: { data: Record<string, unknown> } };
  assert.equal(body.error.data.state, "admin_connect_required");
  assert.equal(body.error.data.authUrl, undefined);
  await seed(undefined, "shared-token-0123456789");
  const c = ctx();
  await policy(post({ jsonrpc: "2.0", id: 1, method: "tools/call" }, {}, "anyone"), c, {}, "p");
  assert.equal(c.upstreamHeaders.authorization, "Bearer shared-token-0123456789");
});

test("user mode needs an authenticated caller", async () => {
  const policy = await build({ displayName: "Linear", authMode: "user-oauth" });
  await assert.rejects(Promise.resolve(policy(post({ jsonrpc: "2.0", id: 1, method: "tools/call" }, {}, null), ctx(), {}, "p")), {
    status: 401,
  });
});

test("a rewritePattern that depends on the request is a start-up error", async () => {
  const dynamic: RouteConfig = { ...route, handler: { ...route.handler, options: { rewritePattern: "https://x/${params.id}" } } };
  const init: BuildInit = { name: "mcp-token-exchange-x", services: services as GatewayServices, routes: [dynamic], usedBy: [dynamic], policies: [] };
  await assert.rejects(createTokenExchange(tokenExchangeOptionsSchema.parse({ displayName: "X", authMode: "user-oauth" }), init), /fixed upstream URL/);
});
