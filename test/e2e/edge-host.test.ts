/**
 * The Host header must not steer routing. Reproduces the attack: a front proxy that lets only
 * `/mcp/fast` through, and a client that sends target `/mcp/fast` with
 * `Host: 127.0.0.1:P/metrics?` (which used to serve `/metrics`) or
 * `Host: 127.0.0.1:P/__tollgate/oauth/register?` (which used to serve client registration).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startGateway, type RunningGateway } from "../helpers/harness.js";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { MCP_POST_HEADERS, proxyProject, rpc } from "./mcp-proxy-helpers.js";
import { rawExchange } from "../helpers/raw-socket.js";

let upstream: McpTestServer;
let gw: RunningGateway;
let port: number;

const post = (target: string, host: string, extra = "") => {
  const body = rpc("tools/list");
  const fields = Object.entries(MCP_POST_HEADERS).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  return rawExchange(port, `POST ${target} HTTP/1.1\r\nHost: ${host}\r\n${fields}${extra}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
};

before(async () => {
  upstream = await startMcpTestServer({ mode: "stateless" });
  const dir = await proxyProject([{ path: "/mcp/fast", options: { rewritePattern: upstream.url } }]);
  gw = await startGateway({ projectDir: dir });
  port = Number(new URL(gw.url).port);
});

after(async () => {
  await gw?.close();
  await upstream?.close();
});

describe("Host and request-target validation", () => {
  test("a normal request reaches /mcp/fast", async () => {
    const res = await post("/mcp/fast", `127.0.0.1:${port}`);
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, /"tools"/);
  });

  for (const suffix of ["/metrics?", "/__tollgate/oauth/register?"]) {
    test(`Host "127.0.0.1:P${suffix}" is refused with 400 and serves neither route`, async () => {
      const res = await post("/mcp/fast", `127.0.0.1:${port}${suffix}`);
      assert.equal(res.status, 400);
      assert.equal(JSON.parse(res.body).code, "bad_host");
      assert.doesNotMatch(res.body, /tollgate_http|client_id/);
    });
  }

  for (const host of ["evil@127.0.0.1", "a b", "h#x", "h/x", "h?x", "h\\x", "h%2fx", "[::1", "h:port", ""]) {
    test(`Host ${JSON.stringify(host)} is refused with 400`, async () => {
      const res = await post("/mcp/fast", host);
      assert.equal(res.status, 400, `${host}: ${res.body}`);
    });
  }

  test("names, IPv4 and IPv6 literals with ports are accepted", async () => {
    for (const host of ["gw.example.com", "gw_internal:8080", `127.0.0.1:${port}`, `[::1]:${port}`, "localhost"]) {
      const res = await post("/mcp/fast", host);
      assert.equal(res.status, 200, `${host}: ${res.body}`);
    }
  });

  test("an absolute-form target is routed by its own path, and its authority is checked too", async () => {
    const ok = await post(`http://127.0.0.1:${port}/mcp/fast`, `127.0.0.1:${port}/metrics?`);
    assert.equal(ok.status, 200, ok.body);
    const userinfo = await post(`http://x@127.0.0.1:${port}/mcp/fast`, `127.0.0.1:${port}`);
    assert.equal(userinfo.status, 400);
    const other = await post(`ftp://127.0.0.1:${port}/mcp/fast`, `127.0.0.1:${port}`);
    assert.equal(other.status, 400);
  });

  test("a backslash in the target cannot walk out of the allowed path", async () => {
    const res = await post("/mcp/fast\\..\\..\\metrics", `127.0.0.1:${port}`);
    assert.equal(res.status, 400);
    assert.doesNotMatch(res.body, /tollgate_http/);
  });
});
