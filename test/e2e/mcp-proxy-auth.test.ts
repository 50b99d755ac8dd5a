/**
 * McpProxyHandler end to end: the upstream-401 contract with credential policies
 * (`context.upstreamAuth`), redirects, and the idle timeout of long-lived SSE streams.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startGateway, type RunningGateway } from "../helpers/harness.js";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { MCP_POST_HEADERS, initializeBody, proxyProject, rawRequest, rpc } from "./mcp-proxy-helpers.js";

/**
 * Sets a stale upstream token and reacts to the upstream's 401 as `options.mode` says: retry with
 * a fresh token, answer with its own Response, or let the 401 through. With `options.user` the
 * caller counts as authenticated by the gateway. Challenges are recorded on `globalThis` for the
 * test to read.
 */
const REFRESHING_POLICY = `
export function refreshingCredential(request, context, options) {
  const seen = (globalThis.__proxyAuthChallenges ??= []);
  if (options.user) request.user = { sub: "caller-1", data: {} };
  context.upstreamHeaders.authorization = options.mode === "scope" ? "Bearer narrow" : "Bearer stale";
  context.upstreamAuth = {
    async onForbidden(challenge) {
      seen.push({ mode: options.mode, ...challenge });
      return "Bearer fresh";
    },
    async onUnauthorized(challenge) {
      seen.push({ mode: options.mode, ...challenge });
      if (options.mode === "retry") return "Bearer fresh";
      if (options.mode === "answer") {
        return new Response(JSON.stringify({ answeredBy: "policy" }), { status: 200, headers: { "content-type": "application/json" } });
      }
      return undefined;
    },
  };
  return request;
}
`;

const challenges = (): Array<{ mode: string; status: number; wwwAuthenticate: string | undefined; retried?: boolean }> =>
  ((globalThis as Record<string, unknown>).__proxyAuthChallenges as never) ?? [];

let secured: McpTestServer;
let other: McpTestServer;
let stateful: McpTestServer;
let gw: RunningGateway;

before(async () => {
  other = await startMcpTestServer({ mode: "stateless" });
  secured = await startMcpTestServer({
    mode: "stateless",
    bearer: "fresh",
    forbiddenBearer: "narrow",
    redirects: { "/old": "/mcp", "/away": other.url, "/loop": "/loop" },
  });
  stateful = await startMcpTestServer({ mode: "stateful" });
  const o = secured.origin;
  const policy = (name: string) => {
    const [mode, user] = name.split("-");
    return {
      name: `refresh-${name}`,
      policyType: "custom-code-inbound",
      handler: { module: "$import(./modules/refresh)", export: "refreshingCredential", options: { mode, user: user === "user" } },
    };
  };
  const dir = await proxyProject(
    [
      { path: "/retry", options: { rewritePattern: secured.url }, inbound: ["refresh-retry"] },
      { path: "/answer", options: { rewritePattern: secured.url }, inbound: ["refresh-answer"] },
      { path: "/pass", options: { rewritePattern: secured.url }, inbound: ["refresh-pass"] },
      { path: "/pass-user", options: { rewritePattern: secured.url }, inbound: ["refresh-pass-user"] },
      { path: "/retry-user", options: { rewritePattern: secured.url }, inbound: ["refresh-retry-user"] },
      { path: "/scope", options: { rewritePattern: secured.url, connectTimeoutMs: 2_000 }, inbound: ["refresh-scope"] },
      { path: "/follow", options: { rewritePattern: `${o}/old`, followRedirects: true }, inbound: ["refresh-retry"] },
      { path: "/nofollow", options: { rewritePattern: `${o}/old` }, inbound: ["refresh-retry"] },
      {
        path: "/cross",
        options: { rewritePattern: `${o}/away`, followRedirects: true, allowedRedirectOrigins: [other.origin] },
        inbound: ["refresh-retry"],
      },
      { path: "/cross-denied", options: { rewritePattern: `${o}/away`, followRedirects: true }, inbound: ["refresh-retry"] },
      { path: "/loop", options: { rewritePattern: `${o}/loop`, followRedirects: true } },
      { path: "/idle", options: { rewritePattern: stateful.url, idleTimeoutMs: 300 } },
    ],
    ["retry", "answer", "pass", "scope", "pass-user", "retry-user"].map(policy),
    { "modules/refresh.ts": REFRESHING_POLICY },
  );
  gw = await startGateway({ projectDir: dir });
});

after(async () => {
  await gw?.close();
  await Promise.all([secured?.close(), other?.close(), stateful?.close()]);
});

const echo = (text: string) => rpc("tools/call", { name: "echo", arguments: { text } });
const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  rawRequest(`${gw.url}${path}`, { headers: { ...MCP_POST_HEADERS, ...headers }, body });

describe("upstream 401 and credential policies", () => {
  test("a fresh token from onUnauthorized is used for one retry with the same body", async () => {
    const body = echo("retry-1");
    const res = await post("/retry", body);
    assert.equal(res.status, 200);
    assert.match(res.body, /retry-1/);
    const sent = secured.requests.filter((r) => r.body.includes('"retry-1"'));
    assert.deepEqual(
      sent.map((r) => r.headers.authorization),
      ["Bearer stale", "Bearer fresh"],
    );
    assert.equal(sent[1]!.body, body);
    const c = challenges().find((x) => x.mode === "retry");
    assert.deepEqual(c, { mode: "retry", status: 401, wwwAuthenticate: 'Bearer error="invalid_token"' });
  });

  test("a Response from onUnauthorized is the answer; undefined lets the 401 through", async () => {
    const answered = await post("/answer", echo("answer-1"));
    assert.equal(answered.status, 200);
    assert.deepEqual(JSON.parse(answered.body), { answeredBy: "policy" });
    const passed = await post("/pass", echo("pass-1"));
    assert.equal(passed.status, 401);
    assert.equal(passed.headers["www-authenticate"], 'Bearer error="invalid_token"');
    assert.deepEqual(JSON.parse(passed.body), { error: "invalid_token" });
    assert.equal(secured.requests.filter((r) => r.body.includes('"pass-1"')).length, 1, "no retry");
  });

  test("an upstream 403 goes to onForbidden and is retried once (route with its own connection pool)", async () => {
    const res = await post("/scope", echo("scope-1"));
    assert.equal(res.status, 200);
    const sent = secured.requests.filter((r) => r.body.includes('"scope-1"'));
    assert.deepEqual(
      sent.map((r) => r.headers.authorization),
      ["Bearer narrow", "Bearer fresh"],
    );
    const c = challenges().find((x) => x.mode === "scope");
    assert.deepEqual(c, { mode: "scope", status: 403, wwwAuthenticate: 'Bearer error="insufficient_scope", scope="tools:write"' });
  });

  test("a retry that is refused again asks once more (retried) and, on an anonymous route, passes the 401 through", async () => {
    secured.setBearer("rotated-elsewhere");
    try {
      const before = challenges().length;
      const res = await post("/retry", echo("retry-2"));
      assert.equal(res.status, 401);
      assert.equal(res.headers["www-authenticate"], 'Bearer error="invalid_token"');
      const asked = challenges().slice(before);
      assert.deepEqual(
        asked.map((c) => c.retried),
        [undefined, true],
      );
      // The policy answered "Bearer fresh" again; a request is still retried only once.
      assert.equal(secured.requests.filter((r) => r.body.includes('"retry-2"')).length, 2);
    } finally {
      secured.setBearer("fresh");
    }
  });

  test("where the gateway authenticated the caller, an unrecovered upstream 401 is a 502 upstream_auth_failed without the upstream's challenge", async () => {
    const passed = await post("/pass-user", echo("pass-user-1"));
    assert.equal(passed.status, 502);
    assert.equal(passed.headers["www-authenticate"], undefined);
    assert.match(String(passed.headers["content-type"]), /application\/problem\+json/);
    const problem = JSON.parse(passed.body) as { code: string; detail: string };
    assert.equal(problem.code, "upstream_auth_failed");
    assert.match(problem.detail, /rejected the gateway's credentials/);
    secured.setBearer("rotated-elsewhere");
    try {
      const before = challenges().length;
      const retried = await post("/retry-user", echo("retry-user-1"));
      assert.equal(retried.status, 502);
      assert.equal(retried.headers["www-authenticate"], undefined);
      assert.equal((JSON.parse(retried.body) as { code: string }).code, "upstream_auth_failed");
      assert.deepEqual(
        challenges().slice(before).map((c) => c.retried),
        [undefined, true],
      );
      assert.equal(secured.requests.filter((r) => r.body.includes('"retry-user-1"')).length, 2);
    } finally {
      secured.setBearer("fresh");
    }
  });
});

describe("redirects", () => {
  test("followRedirects follows a same-origin 307 keeping method, body and credentials", async () => {
    const res = await post("/follow", echo("follow-1"));
    assert.equal(res.status, 200);
    const final = secured.requests.filter((r) => r.url === "/mcp" && r.body.includes('"follow-1"'));
    assert.equal(final.at(-1)?.method, "POST");
    assert.equal(final.at(-1)?.headers.authorization, "Bearer fresh");
  });

  test("without followRedirects the 307 is answered as is", async () => {
    const res = await post("/nofollow", echo("nofollow-1"));
    assert.equal(res.status, 307);
    assert.equal(res.headers.location, "/mcp");
  });

  test("another origin is followed only when allowed, and never gets the credentials", async () => {
    const res = await post("/cross", echo("cross-1"));
    assert.equal(res.status, 200);
    const there = await other.waitForRequest((r) => r.body.includes('"cross-1"'));
    assert.equal(there.headers.authorization, undefined);
    const denied = await post("/cross-denied", echo("cross-2"));
    assert.equal(denied.status, 307);
    assert.equal(other.requests.some((r) => r.body.includes('"cross-2"')), false);
  });

  test("a redirect loop ends with 502", async () => {
    const res = await post("/loop", echo("loop-1"));
    assert.equal(res.status, 502);
    assert.equal((JSON.parse(res.body) as { code: string }).code, "upstream_redirect_loop");
  });
});

describe("idle timeout", () => {
  test("a silent SSE stream is ended cleanly after idleTimeoutMs and the upstream stream is closed", async () => {
    const init = await post("/idle", initializeBody());
    assert.equal(init.status, 200);
    const sid = String(init.headers["mcp-session-id"]);
    const session = { "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" };
    const initialized = await post("/idle", JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }), session);
    assert.equal(initialized.status, 202);
    const stream = await rawRequest(`${gw.url}/idle`, { method: "GET", headers: { accept: "text/event-stream", ...session } });
    assert.equal(stream.status, 200);
    assert.match(String(stream.headers["content-type"]), /text\/event-stream/);
    const get = await stateful.waitForRequest((r) => r.method === "GET" && r.headers["mcp-session-id"] === sid);
    assert.deepEqual(await get.closed, { aborted: true });
  });
});
