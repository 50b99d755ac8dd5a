import assert from "node:assert/strict";
import { test } from "node:test";
import type { McpRequestInfo } from "../../mcp/messages.js";
import {
  connectAnswer,
  connectRequiredProblem,
  connectRequiredResponse,
  inputRequestKey,
  prefersSse,
  REQUEST_STATE_PREFIX,
  type ConnectRequired,
} from "./connect-required.js";
import { tokenExchangeOptionsSchema, upstreamIdOf } from "./options.js";

const c: ConnectRequired = {
  state: "authenticating",
  upstreamId: "linear",
  displayName: "Linear",
  operationId: "linear-mcp-server",
  authMode: "user-oauth",
  authUrl: "https://gw.example.com/__tollgate/connections/linear/connect?ticket=T",
  elicitationId: "e-1",
};
const urlCaps = { elicitation: { url: {} } };

function info(messages: McpRequestInfo["messages"], over: Partial<McpRequestInfo> = {}): McpRequestInfo {
  return { messages, batch: false, parsed: true, protocolVersion: "2025-11-25", clientCapabilities: urlCaps, firstId: 1, partial: false, ...over };
}

test("2025-11-25: -32042 with the hosted product's data shape", () => {
  const a = connectAnswer(c, { id: 1, method: "tools/call" }, { protocolVersion: "2025-11-25", capabilities: urlCaps });
  assert.deepEqual(a, {
    jsonrpc: "2.0",
    id: 1,
    error: {
      code: -32042,
      message: `Connect Linear to continue. Open this link: ${c.authUrl}`,
      data: {
        state: "authenticating",
        upstreamServerId: "linear",
        operationId: "linear-mcp-server",
        authUrl: c.authUrl,
        nextAction: "redirect",
        authProfileId: "linear:user-oauth",
        elicitations: [{ mode: "url", elicitationId: "e-1", url: c.authUrl, message: "Connect Linear to continue." }],
      },
    },
  });
});

test("every client sees the link in the message, URL elicitation declared or not", () => {
  const a = connectAnswer(c, { id: "x", method: "tools/list" }, { protocolVersion: "2025-06-18", capabilities: {} }) as {
    error: { message: string };
  };
  assert.ok(a.error.message.includes(c.authUrl!));
  const b = connectAnswer(c, { id: "y", method: "tools/list" }, { protocolVersion: "2025-11-25", capabilities: urlCaps }) as { error: { message: string } };
  assert.ok(b.error.message.includes(c.authUrl!));
});

test("2026-07-28: InputRequiredResult on tools/call; -32042 where MRTR is not allowed", () => {
  const client = { protocolVersion: "2026-07-28", capabilities: urlCaps };
  const a = connectAnswer(c, { id: 7, method: "tools/call" }, client) as { result: Record<string, unknown> };
  assert.deepEqual(a.result, {
    resultType: "input_required",
    inputRequests: {
      [inputRequestKey("linear")]: {
        method: "elicitation/create",
        params: { mode: "url", elicitationId: "e-1", url: c.authUrl, message: "Connect Linear to continue." },
      },
    },
    requestState: `${REQUEST_STATE_PREFIX}e-1`,
  });
  const list = connectAnswer(c, { id: 8, method: "tools/list" }, client) as { error?: { code: number } };
  assert.equal(list.error?.code, -32042);
  const noUrl = connectAnswer(c, { id: 9, method: "tools/call" }, { protocolVersion: "2026-07-28", capabilities: { elicitation: {} } }) as {
    error?: { code: number };
  };
  assert.equal(noUrl.error?.code, -32042, "no URL-mode capability: no elicitation/create input request");
});

test("states: reconsent and admin (no authUrl)", () => {
  const re = connectAnswer({ ...c, state: "reconsent_required" }, { id: 1 }, { protocolVersion: "2025-11-25", capabilities: urlCaps }) as {
    error: { message: string; data: { state: string } };
  };
  assert.equal(re.error.data.state, "reconsent_required");
  assert.match(re.error.message, /again/);
  const admin = connectAnswer(
    { ...c, state: "admin_connect_required", authMode: "shared-oauth", authUrl: undefined },
    { id: 1, method: "tools/call" },
    { protocolVersion: "2026-07-28", capabilities: urlCaps },
  ) as { error: { data: Record<string, unknown> } };
  assert.equal(admin.error.data.state, "admin_connect_required");
  assert.equal(admin.error.data.authUrl, undefined);
  assert.deepEqual(admin.error.data.elicitations, []);
  assert.equal(admin.error.data.authProfileId, "linear:shared-oauth");
});

test("HTTP framing: JSON, SSE, notifications, batches", async () => {
  const single = connectRequiredResponse(c, info([{ jsonrpc: "2.0", id: 1, method: "tools/call" }]), "application/json, text/event-stream");
  assert.equal(single.headers.get("content-type"), "application/json");
  assert.equal(((await single.json()) as { id: number }).id, 1);

  const sse = connectRequiredResponse(c, info([{ jsonrpc: "2.0", id: 2, method: "tools/call" }]), "text/event-stream");
  assert.equal(sse.headers.get("content-type"), "text/event-stream");
  const text = await sse.text();
  assert.match(text, /^event: message\ndata: \{.*"id":2.*\}\n\n$/s);

  const note = connectRequiredResponse(c, info([{ jsonrpc: "2.0", method: "notifications/initialized" }]), "application/json");
  assert.equal(note.status, 202);
  assert.equal(await note.text(), "");

  const batch = connectRequiredResponse(
    c,
    info(
      [
        { jsonrpc: "2.0", id: 1, method: "tools/list" },
        { jsonrpc: "2.0", method: "notifications/progress" },
        { jsonrpc: "2.0", id: 2, method: "tools/call" },
      ],
      { batch: true, protocolVersion: "2025-03-26" },
    ),
    "application/json",
  );
  const arr = (await batch.json()) as Array<{ id: number; error: { code: number } }>;
  assert.deepEqual(
    arr.map((a) => [a.id, a.error.code]),
    [
      [1, -32042],
      [2, -32042],
    ],
  );
});

test("Accept negotiation", () => {
  assert.equal(prefersSse("application/json, text/event-stream"), false);
  assert.equal(prefersSse("text/event-stream"), true);
  assert.equal(prefersSse("application/json;q=0.5, text/event-stream"), true);
  assert.equal(prefersSse("*/*"), false);
  assert.equal(prefersSse(null), false);
});

test("GET/DELETE get a problem+json 403 with the same facts", async () => {
  const r = connectRequiredProblem(c, "req-1");
  assert.equal(r.status, 403);
  assert.equal(r.headers.get("content-type"), "application/problem+json");
  const body = (await r.json()) as Record<string, unknown>;
  assert.equal(body.authUrl, c.authUrl);
  assert.equal(body.code, "upstream_connect_required");
});

test("options: defaults, id, manual client validation", () => {
  const o = tokenExchangeOptionsSchema.parse({ displayName: "Linear", authMode: "user-oauth" });
  assert.deepEqual(o.clientRegistration, { mode: "auto" });
  assert.equal(o.scopeDelimiter, " ");
  assert.equal(upstreamIdOf("mcp-token-exchange-linear", o), "linear");
  assert.equal(upstreamIdOf("mcp-token-exchange-linear", { id: "lin" }), "lin");
  const m = tokenExchangeOptionsSchema.parse({
    displayName: "X",
    authMode: "shared-oauth",
    prompt: false,
    clientRegistration: { mode: "manual", clientId: "id", clientSecret: "s" },
  });
  assert.equal((m.clientRegistration as { tokenEndpointAuthMethod: string }).tokenEndpointAuthMethod, "client_secret_basic");
  const bad = tokenExchangeOptionsSchema.safeParse({
    displayName: "X",
    authMode: "user",
    clientRegistration: { mode: "manual", clientId: "id", tokenEndpointAuthMethod: "client_secret_post" },
  });
  assert.equal(bad.success, false);
  const paths = bad.error!.issues.map((i) => i.path.join("."));
  assert.ok(paths.includes("authMode"));
  assert.ok(paths.some((p) => p.startsWith("clientRegistration")));
});
