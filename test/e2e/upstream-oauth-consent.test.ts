/**
 * Connecting an upstream from the gateway's setup page, end to end: the official SDK client's
 * OAuth against the gateway (dev login), the setup page listing the route's upstream as not
 * connected with a Connect button and Approve refused, the connect flow at the demo upstream (a
 * real oidc-provider), back on the setup page showing it connected, approve — and the client's
 * first tools/call reaches the upstream without a connect-required round trip.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { peekTicket } from "../../src/oauth/connect-state.js";
import { MemoryOAuthClientProvider, startOAuthUpstream, TestBrowser, type BrowserPage, type OAuthUpstream } from "../fixtures/oauth-upstream.js";
import { startGateway, writeProject, type RunningGateway } from "../helpers/harness.js";
import { whoami } from "./upstream-oauth-kit.js";

let upstream: OAuthUpstream;
let gw: RunningGateway;

before(async () => {
  upstream = await startOAuthUpstream();
  const mcpGateway = "$import(@zuplo/runtime/mcp-gateway)";
  const dir = await writeProject({
    "config/policies.json": JSON.stringify({
      policies: [
        { name: "auth", policyType: "mcp-oauth-inbound", handler: { module: mcpGateway, export: "McpOAuthInboundPolicy", options: { gateway: { scopesSupported: ["mcp"] } } } },
        {
          name: "mcp-token-exchange-notes",
          policyType: "mcp-token-exchange-inbound",
          handler: { module: mcpGateway, export: "McpTokenExchangeInboundPolicy", options: { displayName: "Demo Notes", authMode: "user-oauth" } },
        },
      ],
    }),
    "config/routes.oas.json": JSON.stringify({
      openapi: "3.1.0",
      info: { title: "consent connect", version: "1" },
      paths: {
        "/mcp/notes": {
          "get,post,delete": {
            operationId: "notes-mcp",
            "x-zuplo-route": {
              corsPolicy: "none",
              handler: { module: mcpGateway, export: "McpProxyHandler", options: { rewritePattern: upstream.mcpUrl } },
              policies: { inbound: ["auth", "mcp-token-exchange-notes"] },
            },
          },
        },
      },
    }),
  });
  gw = await startGateway({ projectDir: dir, settings: { devLogin: true } });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
});

/** The Demo Notes row of the setup page: its Connect link, or its "Connected" state. */
function notesRow(page: BrowserPage): { connectHref: string | undefined; connected: boolean } {
  const row = /<li class="upstream[^"]*" data-upstream="notes" data-state="([a-z-]+)">(.*?)<\/li>/.exec(page.text);
  assert.ok(row, `the setup page lists Demo Notes: ${page.text.slice(0, 600)}`);
  const href = /<a class="button big" href="([^"]+)"[^>]*>Connect Demo Notes<\/a>/.exec(row[2]!)?.[1]?.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
  return { connectHref: href, connected: row[1] === "connected" };
}

test("connect an upstream from the setup page, come back to it, approve: the first tools/call just works", async () => {
  const url = new URL(`${gw.url}/mcp/notes`);
  const provider = new MemoryOAuthClientProvider();
  const first = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await assert.rejects(new Client({ name: "consent-test", version: "1.0.0" }).connect(first), UnauthorizedError);
  await first.close();
  assert.ok(provider.authorizationUrl, "the SDK asked to open the gateway's authorization page");

  // Authorize → dev login → the setup page.
  const browser = new TestBrowser();
  const toClient = (u: URL) => u.href.startsWith(provider.callbackUrl);
  const login = await browser.open(provider.authorizationUrl, { stopAt: toClient });
  assert.match(login.url.pathname, /\/oauth\/dev-login$/);
  let consent = await browser.submit(login, { username: "alice" }, { stopAt: toClient });
  assert.match(consent.url.pathname, /\/oauth\/setup$/);
  const before = notesRow(consent);
  assert.equal(before.connected, false);
  assert.ok(before.connectHref, "a Connect button for the upstream");
  assert.match(consent.text, /<button type="submit" name="decision" value="approve" disabled/, "Approve is disabled");

  // Approve is refused server-side while Demo Notes is not connected; the request stays pending.
  const refused = await browser.submit(consent, {}, { button: { name: "decision", value: "approve" }, stopAt: toClient });
  assert.equal(refused.status, 409);
  assert.match(refused.text, /Connect Demo Notes before approving/);

  // The button carries a connect ticket bound to alice and the route, like connect-required answers.
  const link = new URL(before.connectHref);
  assert.equal(link.origin + link.pathname, `${gw.url}/__tollgate/auth/connections/notes/connect`);
  assert.equal(link.searchParams.get("redirect"), "true");
  assert.equal(link.searchParams.get("operationId"), "notes-mcp");
  const ticket = await peekTicket(gw.services.store, link.searchParams.get("browserTicket"));
  assert.equal(ticket?.subject, "alice");
  assert.equal(ticket?.upstreamId, "notes");
  assert.equal(ticket?.operationId, "notes-mcp");
  assert.equal(ticket?.returnTo, `${consent.url.pathname}${consent.url.search}`);

  // Connect: straight to the upstream's sign-in (the signed-in user is the ticket's subject),
  // the callback — then back here.
  const back = await browser.walk(link, {
    values: (page): Record<string, string> => (/name="username"/.test(page.text) ? { username: "alice" } : {}),
    stopAt: (u) => u.pathname.endsWith("/oauth/setup"),
  });
  assert.equal(back.status, 0, `expected a redirect back to the setup page, got ${back.status} at ${back.url.href}: ${back.text.slice(0, 300)}`);
  assert.equal(back.url.href, consent.url.href, "back on the same setup page");
  assert.equal(upstream.authorizationRequests.length, 1);
  consent = await browser.open(back.url, { stopAt: toClient });
  const after = notesRow(consent);
  assert.equal(after.connected, true, "the setup page shows the upstream connected");
  assert.doesNotMatch(consent.text, /value="approve" disabled/, "Approve is enabled");
  assert.equal(after.connectHref, undefined);

  // Approve → code → token, then MCP: no connect-required round trip.
  const done = await browser.submit(consent, {}, { button: { name: "decision", value: "approve" }, stopAt: toClient });
  assert.equal(done.status, 0, done.text.slice(0, 300));
  const code = done.url.searchParams.get("code");
  assert.ok(code);
  const second = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await second.finishAuth(code);
  await second.close();
  const client = new Client({ name: "consent-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
  try {
    assert.equal(await whoami(client), "alice");
    assert.equal(upstream.authorizationRequests.length, 1, "no second connection was needed");
    assert.ok(gw.logs.some((l) => l.includes('"event":"mcp_auth_upstream_connection_established"')));
    assert.ok(!gw.logs.some((l) => l.includes("upstream connection required")), "no connect-required answer was sent");
  } finally {
    await client.close();
  }
});

test("the Connect link's return address cannot leave the gateway", async () => {
  const { connectUrlFor } = await import("../../src/oauth/registry.js");
  for (const bad of ["https://evil.example/x", "//evil.example/x", "/\\evil.example/x", "javascript:alert(1)"]) {
    await assert.rejects(connectUrlFor(gw.services, "notes", "alice", "notes-mcp", bad), /same-origin/, bad);
  }
  await assert.rejects(connectUrlFor(gw.services, "unknown", "alice", "notes-mcp"), /no per-user upstream/);
  const ok = await connectUrlFor(gw.services, "notes", "alice", "notes-mcp", "/__tollgate/oauth/setup?req=x");
  assert.match(ok, /\/__tollgate\/auth\/connections\/notes\/connect\?redirect=true&operationId=notes-mcp&browserTicket=/);
});
