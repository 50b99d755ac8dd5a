/**
 * The audit trail and MCP metrics over one scripted session against real parts (the official
 * SDK client, the demo OAuth upstream with its real authorization server, the connect flow in
 * a scripted browser): sign in, connect, tool calls that succeed, fail in the tool, are hidden
 * by the capability filter, fail upstream (token endpoint down during a refresh), a refresh,
 * a disconnect. Every event is checked by name and fields, the metrics by their deltas, and
 * every captured line for secrets and tool arguments.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startOAuthUpstream, TestBrowser, type OAuthUpstream } from "../fixtures/oauth-upstream.js";
import { startGateway, writeProject, type RunningGateway } from "../helpers/harness.js";
import { connectUser, projectFiles, startIdentity, type Identity } from "./upstream-oauth-kit.js";
import "../../src/policies/mcp-capability-filter-inbound/index.js";

let identity: Identity;
let upstream: OAuthUpstream;
let gw: RunningGateway;

/** The kit's project plus a capability filter that hides the `add` tool. */
function filteredProject(jwksUrl: string, mcpUrl: string): Record<string, string> {
  const files = projectFiles(jwksUrl, mcpUrl);
  const policies = JSON.parse(files["config/policies.json"]!);
  policies.policies.push({
    name: "hide-add",
    policyType: "mcp-capability-filter-inbound",
    handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: "McpCapabilityFilterInboundPolicy", options: { tools: { deny: ["add"] } } },
  });
  const routes = JSON.parse(files["config/routes.oas.json"]!);
  routes.paths["/mcp/notes"]["get,post,delete"]["x-zuplo-route"].policies.inbound = ["jwt-auth", "hide-add", "mcp-token-exchange-notes"];
  return { "config/policies.json": JSON.stringify(policies), "config/routes.oas.json": JSON.stringify(routes) };
}

before(async () => {
  identity = await startIdentity();
  upstream = await startOAuthUpstream({});
  gw = await startGateway({ projectDir: await writeProject(filteredProject(identity.jwks.url, upstream.mcpUrl)), settings: { devLogin: true } });
});
after(async () => {
  await gw?.close();
  await upstream?.close();
  await identity?.close();
});

type Line = Record<string, unknown>;
const events = (from = 0): Line[] =>
  gw.logs
    .slice(from)
    .map((l) => JSON.parse(l) as Line)
    .filter((l) => typeof l.event === "string");

/** Sum of a metric's samples whose labels include `labels`. */
async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const text = await gw.services.metrics!.registry.metrics();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** Waits (without timers) until the audit trail has written `n` events after `from`. */
async function settled(from: number, pred: (e: Line[]) => boolean): Promise<Line[]> {
  for (let i = 0; i < 200; i++) {
    const e = events(from);
    if (pred(e)) return e;
    await new Promise((r) => setImmediate(r));
  }
  return events(from);
}

const pick = (e: Line) => [e.event, e.mcpMethod, e.capabilityName, e.outcome, e.reasonCode, e.failureOrigin];

test("a scripted session yields exactly the expected audit events and metric deltas", async () => {
  const secretArg = "top-secret-argument-7f3a9c";
  const mark0 = gw.logs.length;
  const browser = new TestBrowser();
  const c = await connectUser({ upstream, gw, close: async () => {} }, identity, "alice", browser);
  const connectPhase = events(mark0);
  const auth = connectPhase.filter((e) => String(e.event).startsWith("mcp_auth_"));
  assert.deepEqual(
    auth.map((e) => e.event),
    ["mcp_auth_upstream_connect_started", "mcp_auth_upstream_connection_established"],
  );
  for (const e of auth) {
    assert.equal(e.upstreamServerId, "notes");
    assert.equal(e.subjectId, "alice");
  }
  assert.ok(
    connectPhase.some((e) => e.event === "mcp_request_rejected" && e.outcome === "connect_required" && e.subjectId === "alice" && e.operationId === "notes-mcp"),
    "the first attempt is rejected with connect_required",
  );

  const before = {
    ok: await metric("tollgate_mcp_capability_calls_total", { capability: "whoami", outcome: "success" }),
    appErr: await metric("tollgate_mcp_capability_calls_total", { capability: "echo", outcome: "application_error" }),
    denied: await metric("tollgate_mcp_capability_calls_total", { outcome: "denied" }),
    failed: await metric("tollgate_mcp_capability_calls_total", { outcome: "failure" }),
    refreshOk: await metric("tollgate_upstream_token_refreshes_total", { upstream: "notes", result: "ok" }),
    refreshFailed: await metric("tollgate_upstream_token_refreshes_total", { upstream: "notes", result: "failed" }),
    revoked: await metric("tollgate_upstream_connections_lost_total", { upstream: "notes", reason: "revoked" }),
    connects: await metric("tollgate_upstream_connect_flows_total", { upstream: "notes", stage: "completed" }),
    whoamiUp: await metric("tollgate_mcp_capability_duration_seconds_count", { capability: "whoami", part: "upstream" }),
    whoamiGw: await metric("tollgate_mcp_capability_duration_seconds_count", { capability: "whoami", part: "gateway" }),
    echoUp: await metric("tollgate_mcp_capability_duration_seconds_count", { capability: "echo", part: "upstream" }),
    addGw: await metric("tollgate_mcp_capability_duration_seconds_count", { capability: "add", part: "gateway" }),
    addUp: await metric("tollgate_mcp_capability_duration_seconds_count", { capability: "add", part: "upstream" }),
  };
  assert.equal(before.connects, 1);

  const mark = gw.logs.length;
  await c.client.listTools();
  const ok = await c.client.callTool({ name: "whoami", arguments: {} });
  assert.equal(ok.isError, undefined);
  const echoed = await c.client.callTool({ name: "echo", arguments: { text: secretArg } });
  assert.equal((echoed.content as Array<{ text: string }>)[0]!.text, secretArg);
  const appErr = await c.client.callTool({ name: "echo", arguments: { text: 42 } as never });
  assert.equal(appErr.isError, true);
  await assert.rejects(c.client.callTool({ name: "add", arguments: { a: 1, b: 2 } }), /Method not found/);
  // Upstream failure: the token has expired and the upstream's token endpoint is down.
  upstream.expireAccessTokens("alice");
  upstream.setTokenEndpointDown(true);
  await assert.rejects(c.client.callTool({ name: "whoami", arguments: {} }));
  upstream.setTokenEndpointDown(false);
  // A refresh: the next call refreshes the grant and succeeds.
  const refreshed = await c.client.callTool({ name: "whoami", arguments: {} });
  assert.equal(refreshed.isError, undefined);
  await c.close();
  // Disconnect from the connections page.
  const page = await browser.open(`${gw.url}/__tollgate/connections`);
  const done = await browser.submit(page, {}, { button: { name: "decision", value: "disconnect:notes" } });
  assert.match(done.text, /Disconnected/);

  const all = await settled(mark, (e) => e.some((x) => x.event === "mcp_auth_upstream_connection_revoked") && e.filter((x) => x.event === "mcp_capability_completed").length === 6);
  const calls = all.filter((e) => e.mcpMethod === "tools/call" || String(e.event).startsWith("mcp_auth_"));
  const byRequest = new Map<string, Line[]>();
  for (const e of calls) {
    const k = typeof e.requestId === "string" ? e.requestId : `auth-${byRequest.size}`;
    byRequest.set(k, [...(byRequest.get(k) ?? []), e]);
  }
  const expected = [
    [["mcp_capability_invoked", "tools/call", "whoami"], ["mcp_capability_completed", "tools/call", "whoami", "success"], ["mcp_request_accepted", "tools/call", "whoami", "success"]],
    [["mcp_capability_invoked", "tools/call", "echo"], ["mcp_capability_completed", "tools/call", "echo", "success"], ["mcp_request_accepted", "tools/call", "echo", "success"]],
    [
      ["mcp_capability_invoked", "tools/call", "echo"],
      ["mcp_capability_completed", "tools/call", "echo", "application_error", "tool_error", "upstream"],
      ["mcp_request_accepted", "tools/call", "echo", "application_error", "tool_error", "upstream"],
    ],
    [
      ["mcp_capability_invoked", "tools/call", "add"],
      ["mcp_capability_completed", "tools/call", "add", "denied", "capability_hidden", "gateway"],
      ["mcp_request_rejected", "tools/call", "add", "denied", "capability_hidden", "gateway"],
    ],
    [
      ["mcp_auth_upstream_refresh_failed", undefined, undefined, undefined, "upstream_token_endpoint_unavailable", "upstream"],
    ],
    [
      ["mcp_capability_invoked", "tools/call", "whoami"],
      ["mcp_capability_completed", "tools/call", "whoami", "failure", "upstream_token_endpoint_unavailable", "upstream"],
      ["mcp_request_rejected", "tools/call", "whoami", "failure", "upstream_token_endpoint_unavailable", "upstream"],
    ],
    [["mcp_auth_upstream_connection_refreshed"]],
    [["mcp_capability_invoked", "tools/call", "whoami"], ["mcp_capability_completed", "tools/call", "whoami", "success"], ["mcp_request_accepted", "tools/call", "whoami", "success"]],
    [["mcp_auth_upstream_connection_revoked"]],
  ];
  const pad = (row: unknown[]) => [...row, ...Array(6 - row.length).fill(undefined)];
  assert.deepEqual(
    [...byRequest.values()].map((group) => group.map(pick)),
    expected.map((group) => group.map(pad)),
  );
  // One access line per request: on the MCP route it is the request event, with the path.
  const accessLines = gw.logs.slice(mark).map((l) => JSON.parse(l) as Line).filter((l) => l.msg === "request");
  for (const id of byRequest.keys()) {
    if (id.startsWith("auth-")) continue;
    const lines = accessLines.filter((l) => l.requestId === id);
    assert.equal(lines.length, 1, `access lines of ${id}: ${JSON.stringify(lines)}`);
    assert.match(String(lines[0]!.event), /^mcp_request_(accepted|rejected)$/);
    assert.equal(lines[0]!.path, "/mcp/notes");
  }
  for (const e of calls) {
    assert.equal(e.upstreamServerId, "notes", JSON.stringify(e));
    assert.equal(e.subjectId, "alice", JSON.stringify(e));
    if (String(e.event).startsWith("mcp_auth_")) continue;
    assert.equal(e.operationId, "notes-mcp");
    assert.equal(e.httpMethod, "POST");
    assert.equal(e.transport, "streamable-http");
    if (e.event !== "mcp_capability_invoked") {
      assert.equal(typeof e.latencyMs, "number");
      assert.equal(typeof e.gatewayLatencyMs, "number");
      assert.equal(typeof e.upstreamLatencyMs, e.outcome === "denied" ? "undefined" : "number", JSON.stringify(e));
    }
  }

  assert.equal(await metric("tollgate_mcp_capability_calls_total", { capability: "whoami", outcome: "success" }), before.ok + 2);
  assert.equal(await metric("tollgate_mcp_capability_calls_total", { capability: "echo", outcome: "application_error" }), before.appErr + 1);
  // The upstream listed `add` (the filter hid it from the client afterwards): a label of its own.
  assert.equal(await metric("tollgate_mcp_capability_calls_total", { capability: "add", outcome: "denied" }), before.denied + 1);
  assert.equal(await metric("tollgate_mcp_capability_calls_total", { outcome: "failure" }), before.failed + 1);
  assert.equal(await metric("tollgate_upstream_token_refreshes_total", { upstream: "notes", result: "ok" }), before.refreshOk + 1);
  assert.equal(await metric("tollgate_upstream_token_refreshes_total", { upstream: "notes", result: "failed" }), before.refreshFailed + 1);
  assert.equal(await metric("tollgate_upstream_connections_lost_total", { upstream: "notes", reason: "revoked" }), before.revoked + 1);
  assert.ok((await metric("tollgate_mcp_duration_seconds_count", { route: "notes-mcp", mcp_method: "tools/call", part: "upstream" })) >= 5);
  // Per-tool latency, split into the gateway's part and the upstream's (the failed whoami reached
  // the upstream before its refresh failed); the hidden `add` never reached the upstream.
  const timed = (capability: string, part: string) =>
    metric("tollgate_mcp_capability_duration_seconds_count", { route: "notes-mcp", mcp_method: "tools/call", capability, part });
  assert.equal(await timed("whoami", "upstream"), before.whoamiUp + 3);
  assert.equal(await timed("whoami", "gateway"), before.whoamiGw + 3);
  assert.equal(await timed("echo", "upstream"), before.echoUp + 2);
  assert.equal(await timed("add", "gateway"), before.addGw + 1);
  assert.equal(await timed("add", "upstream"), before.addUp);
  assert.ok((await metric("tollgate_mcp_capability_duration_seconds_sum", { capability: "whoami", part: "upstream" })) > 0);
  assert.ok((await metric("tollgate_store_operation_duration_seconds_count", { operation: "get" })) > 0);

  // Nothing secret in any line of the session: tokens, codes, verifiers, tickets, tool arguments.
  const raw = gw.logs.join("\n");
  assert.ok(!raw.includes(secretArg), "a tool argument was logged");
  assert.ok(!raw.includes("top-secret"), "a tool argument was logged");
  for (const h of upstream.seenAuthorizations) assert.ok(!raw.includes(h.replace(/^Bearer /, "")), "an upstream token was logged");
  assert.ok(!raw.includes(await identity.token("alice").then((t) => t.split(".")[2]!)), "the caller's JWT was logged");
  assert.ok(!/"(access_token|refresh_token|code_verifier|code|ticket|client_secret)":"[^[]/.test(raw));
  assert.ok(!/ticket=[A-Za-z0-9_-]{20}/.test(raw), "a connect ticket was logged");
  assert.ok(!/[?&]code=[A-Za-z0-9_-]{10}/.test(raw), "an authorization code was logged");
});

test("the example Grafana dashboard queries only metrics the gateway exports", async () => {
  const { readFile } = await import("node:fs/promises");
  const dashboard = JSON.parse(await readFile(new URL("../../deploy/grafana/tollgate-dashboard.json", import.meta.url), "utf8")) as {
    panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  };
  const registry = gw.services.metrics!.registry;
  const used = new Set<string>();
  for (const p of dashboard.panels) for (const t of p.targets) for (const m of t.expr.matchAll(/tollgate_[a-z_]+/g)) used.add(m[0]);
  assert.ok(used.has("tollgate_mcp_capability_duration_seconds_bucket"), "the per-tool latency is on the dashboard");
  for (const name of used) {
    const family = name.replace(/_(bucket|sum|count)$/, "");
    assert.ok(registry.getSingleMetric(family) ?? registry.getSingleMetric(name), `${name} (panel query) is not exported`);
  }
});
