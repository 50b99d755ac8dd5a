/**
 * McpProxyHandler end to end, the gateway's own duties: failures and timeouts, client aborts,
 * credentials (inbound Authorization never forwarded, policy-set upstream headers are), hop-by-hop
 * headers, X-Forwarded-*, Origin checks, query forwarding and `${env.X}` / `${params.x}` patterns.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { startGateway, type RunningGateway } from "../helpers/harness.js";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { MCP_POST_HEADERS, proxyProject, rawRequest, rpc } from "./mcp-proxy-helpers.js";

/** A project policy that sets an upstream credential the way credential policies do. */
const CREDENTIAL_POLICY = `
export function setUpstreamCredential(request, context, options) {
  context.upstreamHeaders["Authorization"] = "Bearer " + options.token;
  context.upstreamHeaders["X-Upstream-Tenant"] = "t-1";
  return request;
}
`;

let stateless: McpTestServer;
let deadUrl: string;
let gw: RunningGateway;

before(async () => {
  stateless = await startMcpTestServer({ mode: "stateless" });
  const dead = http.createServer();
  await new Promise<void>((r) => dead.listen(0, "127.0.0.1", r));
  deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}/mcp`;
  await new Promise<void>((r) => dead.close(() => r()));
  const up = new URL(stateless.url);
  const dir = await proxyProject(
    [
      { path: "/mcp", options: { rewritePattern: stateless.url } },
      { path: "/dead", options: { rewritePattern: deadUrl } },
      { path: "/slow", options: { rewritePattern: stateless.url, firstByteTimeoutMs: 300 } },
      { path: "/cred", options: { rewritePattern: stateless.url }, inbound: ["upstream-credential"] },
      { path: "/nosearch", options: { rewritePattern: stateless.url, forwardSearch: false } },
      { path: "/env", options: { rewritePattern: "${env.UPSTREAM_ORIGIN}/mcp" } },
      { path: "/t/{name}", options: { rewritePattern: `${up.origin}/\${params.name}` } },
      { path: "/browser", options: { rewritePattern: stateless.url, allowedOrigins: ["https://app.example.com"] } },
    ],
    [
      {
        name: "upstream-credential",
        policyType: "custom-code-inbound",
        handler: { module: "$import(./modules/credential)", export: "setUpstreamCredential", options: { token: "upstream-secret" } },
      },
    ],
    { "modules/credential.ts": CREDENTIAL_POLICY },
  );
  gw = await startGateway({ projectDir: dir, env: { UPSTREAM_ORIGIN: up.origin } });
});

after(async () => {
  await gw?.close();
  await stateless?.close();
});

const echo = (text: string) => rpc("tools/call", { name: "echo", arguments: { text } });
const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  rawRequest(`${gw.url}${path}`, { headers: { ...MCP_POST_HEADERS, ...headers }, body });

describe("upstream failures", () => {
  test("an unreachable upstream answers 502 problem+json", async () => {
    const res = await post("/dead", echo("x"));
    assert.equal(res.status, 502);
    assert.match(String(res.headers["content-type"]), /application\/problem\+json/);
    const problem = JSON.parse(res.body) as { code: string; detail: string };
    assert.equal(problem.code, "upstream_unreachable");
    assert.equal(problem.detail.includes("127.0.0.1"), false, "no upstream address in the answer");
  });

  test("no answer before firstByteTimeoutMs answers 504 and abandons the upstream request", async () => {
    const res = await post("/slow", rpc("tools/call", { name: "sleep", arguments: { ms: 20_000 } }, "slow-1"));
    assert.equal(res.status, 504);
    assert.equal((JSON.parse(res.body) as { code: string }).code, "upstream_timeout");
    const seen = await stateless.waitForRequest((r) => r.body.includes('"slow-1"'));
    assert.deepEqual(await seen.closed, { aborted: true });
  });

  test("a client abort cancels the upstream request", async () => {
    const ac = new AbortController();
    const pending = fetch(`${gw.url}/mcp`, {
      method: "POST",
      headers: MCP_POST_HEADERS,
      body: rpc("tools/call", { name: "sleep", arguments: { ms: 20_000 } }, "abort-1"),
      signal: ac.signal,
    });
    const seen = await stateless.waitForRequest((r) => r.body.includes('"abort-1"'));
    ac.abort();
    await assert.rejects(pending);
    assert.deepEqual(await seen.closed, { aborted: true });
  });
});

describe("headers", () => {
  test("inbound Authorization and Cookie never reach the upstream; policy-set upstream headers do", async () => {
    const res = await post("/cred", echo("cred-1"), { authorization: "Bearer client-token", cookie: "sid=abc" });
    assert.equal(res.status, 200);
    const seen = await stateless.waitForRequest((r) => r.body.includes('"cred-1"'));
    assert.equal(seen.headers.authorization, "Bearer upstream-secret");
    assert.equal(seen.headers["x-upstream-tenant"], "t-1");
    assert.equal(seen.headers.cookie, undefined);
    const plain = await post("/mcp", echo("cred-2"), { authorization: "Bearer client-token" });
    assert.equal(plain.status, 200);
    const seen2 = await stateless.waitForRequest((r) => r.body.includes('"cred-2"'));
    assert.equal(seen2.headers.authorization, undefined);
  });

  test("hop-by-hop headers are stripped both ways; end-to-end and MCP headers pass", async () => {
    const res = await post("/mcp", echo("hop-1"), {
      connection: "keep-alive, x-hop-secret",
      "x-hop-secret": "1",
      "keep-alive": "timeout=1",
      "proxy-authorization": "Basic eA==",
      te: "trailers",
      "mcp-session-id": "session-from-client",
      "last-event-id": "evt-9",
      "x-custom": "kept",
    });
    const seen = await stateless.waitForRequest((r) => r.body.includes('"hop-1"'));
    for (const h of ["x-hop-secret", "proxy-authorization", "te"]) assert.equal(seen.headers[h], undefined, h);
    assert.notEqual(seen.headers["keep-alive"], "timeout=1");
    assert.equal(seen.headers["mcp-session-id"], "session-from-client");
    assert.equal(seen.headers["last-event-id"], "evt-9");
    assert.equal(seen.headers["x-custom"], "kept");
    assert.equal(seen.headers.accept, MCP_POST_HEADERS.accept);
    // The upstream's own `Keep-Alive: timeout=5` must not leak; the gateway's server sends its own.
    assert.equal(res.headers["keep-alive"], "timeout=65");
  });

  test("X-Forwarded-For is appended to; X-Forwarded-Proto and -Host describe the client's request", async () => {
    await post("/mcp", echo("xff-1"), { "x-forwarded-for": "203.0.113.7", "x-forwarded-host": "spoofed.example" });
    const seen = await stateless.waitForRequest((r) => r.body.includes('"xff-1"'));
    assert.equal(seen.headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert.equal(seen.headers["x-forwarded-proto"], "http");
    assert.equal(seen.headers["x-forwarded-host"], new URL(gw.url).host);
    assert.ok(seen.headers["x-request-id"]);
  });
});

describe("browser origins", () => {
  test("a foreign Origin is refused with 403 and never reaches the upstream", async () => {
    const before = stateless.requests.length;
    const res = await post("/mcp", echo("evil-1"), { origin: "http://evil.example" });
    assert.equal(res.status, 403);
    assert.equal((JSON.parse(res.body) as { code: string }).code, "origin_not_allowed");
    assert.equal(stateless.requests.slice(before).some((r) => r.body.includes("evil-1")), false);
  });

  test("the gateway's own origin, configured origins and requests without Origin pass", async () => {
    assert.equal((await post("/mcp", echo("o-1"), { origin: gw.url })).status, 200);
    assert.equal((await post("/browser", echo("o-2"), { origin: "https://app.example.com" })).status, 200);
    assert.equal((await post("/mcp", echo("o-3"), { origin: "https://app.example.com" })).status, 403);
    assert.equal((await post("/mcp", echo("o-4"))).status, 200);
  });

  test("a rebinding attempt (foreign Origin matching the Host it sent) is refused", async () => {
    const res = await post("/mcp", echo("rebind-1"), { origin: "http://attacker.example:8080", host: "attacker.example:8080" });
    assert.equal(res.status, 403);
  });
});

describe("target URL", () => {
  test("the query string is forwarded unless forwardSearch is false", async () => {
    await post("/mcp?tenant=a&x=1", echo("q-1"));
    assert.equal((await stateless.waitForRequest((r) => r.body.includes('"q-1"'))).url, "/mcp?tenant=a&x=1");
    await post("/nosearch?tenant=a", echo("q-2"));
    assert.equal((await stateless.waitForRequest((r) => r.body.includes('"q-2"'))).url, "/mcp");
  });

  test("${env.X} is resolved from the environment and ${params.x} from the path", async () => {
    assert.equal((await post("/env", echo("env-1"))).status, 200);
    assert.equal((await stateless.waitForRequest((r) => r.body.includes('"env-1"'))).url, "/mcp");
    assert.equal((await post("/t/mcp", echo("param-1"))).status, 200);
    const other = await post("/t/other", echo("param-2"));
    assert.equal(other.status, 404, "the upstream's 404 for /other passes through");
    assert.equal((await stateless.waitForRequest((r) => r.body.includes('"param-2"'))).url, "/other");
  });
});
