/**
 * `mcp-oauth-inbound` without an IdP: with `TOLLGATE_DEV_LOGIN` the browser signs in with the
 * loopback-only dev login (the quickstart path). Non-loopback peers get 403.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startGateway, writeProject } from "../helpers/harness.js";
import { mcpInitialize, obtainTokens, startAuthEnv, type AuthEnv } from "./auth-server-helpers.js";

describe("mcp-oauth-inbound with the dev login", () => {
  let env: AuthEnv;
  before(async () => {
    env = await startAuthEnv({ devLogin: true });
  });
  after(async () => {
    await env.close();
  });

  test("authorize → dev login → consent → token → MCP request as the dev user", async () => {
    const { tokens } = await obtainTokens(env);
    const res = await mcpInitialize(env.routeA, String(tokens.access_token));
    assert.equal(res.status, 200);
    await res.text();
    const grants = await env.gw.services.store.list<{ user: { sub: string } }>("as-grants");
    assert.equal(grants.at(-1)!.value.user.sub, "alice");
  });

  test("the dev login answers 403 to non-loopback peers and to proxied requests", async () => {
    const url = `${env.gw.url}/__tollgate/login/dev`;
    const remote = await env.gw.gateway.fetch(new Request(url), { remoteAddress: "203.0.113.7" });
    assert.equal(remote.status, 403);
    assert.match(await remote.text(), /loopback-only/);
    const post = await env.gw.gateway.fetch(
      new Request(url, { method: "POST", body: "username=eve", headers: { "content-type": "application/x-www-form-urlencoded" } }),
      { remoteAddress: "198.51.100.1" },
    );
    assert.equal(post.status, 403);
    assert.equal(post.headers.getSetCookie().length, 0);
    const proxied = await fetch(url, { headers: { "x-forwarded-for": "203.0.113.7" } });
    assert.equal(proxied.status, 403);
    const local = await fetch(url);
    assert.equal(local.status, 200);
  });
});

test("without an IdP and with dev login off, the policy refuses to start", async () => {
  const dir = await writeProject({
    "config/routes.oas.json": JSON.stringify({
      openapi: "3.1.0",
      info: { title: "t", version: "1" },
      paths: {
        "/mcp": {
          post: {
            operationId: "mcp",
            "x-zuplo-route": {
              handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: "McpProxyHandler", options: { rewritePattern: "http://127.0.0.1:9/mcp" } },
              policies: { inbound: ["auth"] },
            },
          },
        },
      },
    }),
    "config/policies.json": JSON.stringify({
      policies: [{ name: "auth", policyType: "mcp-oauth-inbound", handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: "McpOAuthInboundPolicy", options: {} } }],
    }),
  });
  await assert.rejects(startGateway({ projectDir: dir, settings: { devLogin: false } }), /no browser login is configured/);
});
