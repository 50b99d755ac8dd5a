/**
 * OpenTelemetry traces end to end: the gateway exports over OTLP/HTTP (JSON) to an in-process
 * receiver (a plain node:http server, standing in for a collector that cannot run here), and
 * proxies to a real MCP SDK server. Checked: the span tree of one `tools/call` (request → policy
 * spans → handler → upstream), the `traceparent` the upstream received, an incoming
 * `traceparent` as the parent, `_meta` trace keys passed on untouched, and the trace id on the
 * audit lines.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { logsWhen, startGateway, type RunningGateway } from "../helpers/harness.js";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { proxyProject, rpc } from "./mcp-proxy-helpers.js";
import { tracingEnabled } from "../../src/tracing/index.js";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
}

const SERVER = 2;
const CLIENT = 3;

let receiver: http.Server;
let receiverUrl: string;
const spans: OtlpSpan[] = [];
const contentTypes: string[] = [];
let upstream: McpTestServer;
let gw: RunningGateway;

before(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces") {
        contentTypes.push(String(req.headers["content-type"]));
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
          resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
        };
        for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      } else res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  upstream = await startMcpTestServer({ mode: "stateless" });
  const policies = [
    {
      name: "tag",
      policyType: "set-headers-inbound",
      handler: { module: "$import(@zuplo/runtime)", export: "SetHeadersInboundPolicy", options: { headers: [{ name: "x-tag", value: "t" }] } },
    },
    {
      name: "filter",
      policyType: "mcp-capability-filter-inbound",
      handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: "McpCapabilityFilterInboundPolicy", options: { tools: ["echo"] } },
    },
  ];
  const dir = await proxyProject([{ path: "/mcp", options: { rewritePattern: upstream.url }, inbound: ["tag", "filter"] }], policies);
  gw = await startGateway({
    projectDir: dir,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_BSP_SCHEDULE_DELAY: "10", OTEL_SERVICE_NAME: "tollgate-test" },
  });
});

after(async () => {
  await gw?.services.tracing?.shutdown();
  await gw?.close();
  await upstream?.close();
  await new Promise((r) => receiver?.close(r));
});

const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v ? (v.stringValue ?? v.intValue ?? v.boolValue) : undefined;
};

async function callEcho(headers: Record<string, string>, params: Record<string, unknown>): Promise<{ traceId: string; spans: OtlpSpan[] }> {
  const from = upstream.requests.length;
  const res = await fetch(`${gw.url}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25", ...headers },
    body: rpc("tools/call", params, 7),
  });
  assert.equal(res.status, 200);
  assert.match(await res.text(), /secret-free-text/);
  await gw.services.tracing!.forceFlush();
  const seen = upstream.requests.slice(from).find((r) => r.body.includes("tools/call"));
  assert.ok(seen, "the upstream received the call");
  const traceparent = String(seen.headers.traceparent);
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(traceparent);
  assert.ok(m, `upstream saw a W3C traceparent, got ${traceparent}`);
  const traceId = m[1]!;
  // Spans end as the answer's body finishes, which may be just after the client has read it:
  // flush until the upstream span and the request span of this trace are in (or give up after 5 s).
  const deadline = Date.now() + 5000;
  const upstreamIn = () =>
    spans.some((s) => s.traceId === traceId && s.kind === CLIENT && s.name === "upstream POST") && spans.some((s) => s.traceId === traceId && s.kind === SERVER);
  while (!upstreamIn() && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    await gw.services.tracing!.forceFlush();
  }
  const tree = spans.filter((s) => s.traceId === traceId);
  const upstreamSpan = tree.find((s) => s.kind === CLIENT && s.name === "upstream POST");
  assert.ok(upstreamSpan, "an upstream client span");
  assert.equal(upstreamSpan.spanId, m[2], "the upstream's parent is the gateway's upstream span");
  return { traceId, spans: tree };
}

test("tracing stays off without OTEL settings and OTEL_SDK_DISABLED wins", () => {
  assert.equal(tracingEnabled({}), false);
  assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }), true);
  assert.equal(tracingEnabled({ OTEL_TRACES_EXPORTER: "otlp" }), true);
  assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/v1/traces", OTEL_SDK_DISABLED: "true" }), false);
  assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_EXPORTER: "none" }), false);
});

test("one proxied tools/call: request span → policy spans → handler span → upstream span, propagated upstream", async () => {
  const meta = { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "vendor=x" };
  const logFrom = gw.logs.length;
  const { traceId, spans: tree } = await callEcho({}, { name: "echo", arguments: { text: "secret-free-text" }, _meta: meta });
  const request = tree.find((s) => s.kind === SERVER);
  assert.ok(request, "a server span");
  assert.equal(request.name, "POST mcp-0");
  assert.equal(request.parentSpanId || undefined, undefined, "a root span without an incoming traceparent");
  assert.equal(attr(request, "tollgate.route"), "mcp-0");
  assert.equal(Number(attr(request, "http.response.status_code")), 200);
  const byName = (n: string) => tree.find((s) => s.name === n);
  const tag = byName("policy tag");
  const filter = byName("policy filter");
  const handler = byName("handler mcp-0");
  const up = byName("upstream POST");
  assert.ok(tag && filter && handler && up, `span names: ${tree.map((s) => s.name).join(", ")}`);
  assert.equal(tag.parentSpanId, request.spanId);
  assert.equal(filter.parentSpanId, request.spanId);
  assert.equal(handler.parentSpanId, request.spanId);
  assert.equal(up.parentSpanId, handler.spanId);
  assert.equal(Number(attr(up, "http.response.status_code")), 200);
  assert.equal(attr(up, "server.address"), "127.0.0.1");
  assert.ok(contentTypes.every((c) => c.startsWith("application/json")), "OTLP/HTTP with JSON bodies");
  // Nothing of the call's arguments is on any span.
  assert.ok(!JSON.stringify(tree).includes("secret-free-text"));
  // The body's `_meta` trace keys reach the upstream as the client sent them.
  const seen = upstream.requests.filter((r) => r.body.includes("tools/call")).at(-1)!;
  assert.deepEqual((JSON.parse(seen.body) as { params: { _meta: unknown } }).params._meta, meta);
  // The audit lines of this request carry its trace and span ids.
  const written = await logsWhen(gw, logFrom, (lines) => lines.some((l) => l.event === "mcp_request_accepted"));
  const audit = written.filter((l) => typeof l.event === "string");
  assert.ok(audit.length > 0, "audit lines were written");
  for (const e of audit) {
    assert.equal(e.traceId, traceId);
    assert.equal(e.spanId, request.spanId);
  }
});

test("an incoming traceparent is the parent of the request span", async () => {
  const parentTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const parentSpan = "00f067aa0ba902b7";
  const { traceId, spans: tree } = await callEcho(
    { traceparent: `00-${parentTrace}-${parentSpan}-01`, tracestate: "congo=t61rcWkgMzE" },
    { name: "echo", arguments: { text: "secret-free-text" } },
  );
  assert.equal(traceId, parentTrace);
  const request = tree.find((s) => s.kind === SERVER)!;
  assert.equal(request.parentSpanId, parentSpan);
  const seen = upstream.requests.filter((r) => r.body.includes("tools/call")).at(-1)!;
  assert.equal(seen.headers.tracestate, "congo=t61rcWkgMzE");
});
