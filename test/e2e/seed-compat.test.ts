/**
 * Projects written for the hosted MCP gateway product run on Tollgate unchanged.
 *
 * `test/fixtures/projects/seed/` is built from the hosted product's how-to for upstream OAuth,
 * snippet for snippet: JSONC with trailing commas, `"get,post"` method keys,
 * `$import(@zuplo/runtime/mcp-gateway)`, the Linear / Stripe / Notion token-exchange policies and
 * routes, an Auth0-managed inbound OAuth policy, and the three non-OAuth shapes (API key in a
 * custom header, static headers, anonymous).
 *
 * (a) `tollgate validate` accepts it as it is.
 * (b) It runs. The fixture's upstream URLs are the real providers'; to watch it work, the test
 *     runs a copy in which the upstream addresses — each route's `rewritePattern`, and the one
 *     `protectedResourceMetadataUrl` that names a host (Linear's) — become `${env.X}` / `$env(X)`
 *     pointing at local servers. Every other byte of the copy is the fixture's. The local Linear
 *     stand-in serves its protected resource metadata only at the origin root, as Linear does, so
 *     the override is what discovery must use.
 *
 * Auth0 itself is not reachable from a test: the browser signs in to the gateway on the
 * loopback-only dev login page (`TOLLGATE_DEV_LOGIN=1`), which the gateway offers next to the
 * configured IdP, and the MCP client then runs the gateway's own OAuth flow as it would in
 * production.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fsp from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { startHelloServer, type HelloServer } from "../../examples/demo-upstream/hello-server.js";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { MemoryOAuthClientProvider, startOAuthUpstream, TestBrowser, type OAuthUpstream } from "../fixtures/oauth-upstream.js";
import { BIN, cleanEnv, ROOT } from "../helpers/cli.js";
import { startGateway, writeProject, type RunningGateway } from "../helpers/harness.js";
import { disconnectGrant, upstreamOAuthState } from "../../src/oauth/registry.js";
import { completeSetup, connectInBrowser, sdkClient, whoami } from "./upstream-oauth-kit.js";

const FIXTURE = path.join(ROOT, "test/fixtures/projects/seed");
const FILES = ["zuplo.jsonc", "config/policies.json", "config/routes.oas.json"];
const CALLBACK = "http://127.0.0.1:9/callback";

/** What the fixture reads through `$env(...)`. */
const SEED_ENV = {
  AUTH0_DOMAIN: "tollgate-test.us.auth0.com",
  AUTH0_CLIENT_ID: "seed-auth0-client",
  AUTH0_CLIENT_SECRET: "seed-auth0-secret",
  ACME_API_KEY: "acme-key-123",
  GLOBEX_TENANT: "globex-tenant-7",
};

/** Runs `node bin/tollgate.js …` (the real command, no test preload) to completion. */
function runTollgate(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, out })));
}

describe("seed project: validate", () => {
  test("`tollgate validate` accepts the hosted product's project as written", async () => {
    const ok = await runTollgate(["validate", "--project", FIXTURE], SEED_ENV);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /OK: 6 route\(s\), 6 policy\(ies\)/);
    // Without its environment it is refused, naming each unset variable.
    const bad = await runTollgate(["validate", "--project", FIXTURE], {});
    assert.equal(bad.code, 1, bad.out);
    for (const name of Object.keys(SEED_ENV)) assert.match(bad.out, new RegExp(`environment variable ${name} is not set`));
  });
});

/** Replaces `from` (which must occur exactly once) by `to`. */
function replaceOnce(text: string, from: string, to: string): string {
  const parts = text.split(from);
  assert.equal(parts.length, 2, `the fixture contains ${JSON.stringify(from)} exactly once`);
  return parts.join(to);
}

/** The fixture with its upstream addresses pointed at local servers (see the file comment). */
async function localCopy(): Promise<string> {
  const files: Record<string, string> = {};
  for (const f of FILES) files[f] = await fsp.readFile(path.join(FIXTURE, f), "utf8");
  let routes = files["config/routes.oas.json"]!;
  for (const [from, env] of [
    ["https://mcp.linear.app/mcp", "LINEAR_UPSTREAM_URL"],
    ["https://mcp.acme.example/mcp", "ACME_UPSTREAM_URL"],
    ["https://mcp.globex.example/mcp", "GLOBEX_UPSTREAM_URL"],
    ["https://mcp.public.example/mcp", "PUBLIC_UPSTREAM_URL"],
  ] as const) {
    routes = replaceOnce(routes, `"rewritePattern": "${from}"`, `"rewritePattern": "\${env.${env}}"`);
  }
  files["config/routes.oas.json"] = routes;
  files["config/policies.json"] = replaceOnce(
    files["config/policies.json"]!,
    '"https://mcp.linear.app/.well-known/oauth-protected-resource"',
    '"$env(LINEAR_PRM_URL)"',
  );
  return writeProject(files);
}

const MCP_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": "2025-11-25",
};

describe("seed project: running", () => {
  let linear: OAuthUpstream;
  let acme: McpTestServer;
  let globex: McpTestServer;
  let hello: HelloServer;
  let gw: RunningGateway;
  const browser = new TestBrowser();

  before(async () => {
    linear = await startOAuthUpstream({ name: "Linear", prm: "root" });
    acme = await startMcpTestServer({ mode: "stateless" });
    globex = await startMcpTestServer({ mode: "stateless" });
    hello = await startHelloServer();
    gw = await startGateway({
      projectDir: await localCopy(),
      env: {
        ...SEED_ENV,
        TOLLGATE_DEV_LOGIN: "1",
        LINEAR_UPSTREAM_URL: linear.mcpUrl,
        LINEAR_PRM_URL: `${linear.origin}/.well-known/oauth-protected-resource`,
        ACME_UPSTREAM_URL: acme.url,
        GLOBEX_UPSTREAM_URL: globex.url,
        PUBLIC_UPSTREAM_URL: hello.url,
      },
    });
  });
  after(async () => {
    await gw?.close();
    await Promise.all([linear?.close(), acme?.close(), globex?.close(), hello?.close()]);
  });

  /** The browser's gateway session (dev login as `alice`), made once. */
  let signedIn: Promise<void> | undefined;
  const devLogin = () =>
    (signedIn ??= (async () => {
      const form = await browser.open(`${gw.url}/__tollgate/login/dev`);
      const page = await browser.submit(form, { username: "alice" });
      assert.equal(page.status, 200, page.text.slice(0, 200));
      assert.equal(page.url.pathname, "/__tollgate/connections");
    })());

  /** The MCP SDK client's OAuth with the gateway for one route; returns the gateway access token. */
  async function signInClient(routePath: string): Promise<string> {
    await devLogin();
    const auth = new MemoryOAuthClientProvider(CALLBACK, "seed compat test");
    const url = new URL(`${gw.url}${routePath}`);
    await assert.rejects(new Client({ name: "seed", version: "1.0.0" }).connect(new StreamableHTTPClientTransport(url, { authProvider: auth })), UnauthorizedError);
    assert.ok(auth.authorizationUrl?.href.startsWith(`${gw.url}/`), `the gateway is the authorization server (${auth.authorizationUrl?.href})`);
    // The setup page connects the route's per-user upstreams before it approves.
    const back = await completeSetup(browser, auth.authorizationUrl!, (u) => u.href.startsWith(CALLBACK), { upstreamUser: "alice-linear" });
    assert.equal(back.status, 0, `consent sent the browser back to the client (at ${back.url.pathname}: ${back.text.slice(0, 200)})`);
    await new StreamableHTTPClientTransport(url, { authProvider: auth }).finishAuth(back.url.searchParams.get("code")!);
    assert.ok(auth.saved?.access_token);
    return auth.saved.access_token;
  }

  test("unauthenticated MCP requests get 401 with resource_metadata on every OAuth route", async () => {
    for (const route of ["/mcp/linear-v1", "/mcp/stripe-v1", "/mcp/notion-v1", "/mcp/acme-v1"]) {
      const res = await fetch(`${gw.url}${route}`, {
        method: "POST",
        headers: MCP_HEADERS,
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
      });
      await res.body?.cancel();
      assert.equal(res.status, 401, route);
      const prm = `${gw.url}/.well-known/oauth-protected-resource${route}`;
      assert.match(res.headers.get("www-authenticate") ?? "", new RegExp(`^Bearer .*resource_metadata="${prm.replace(/[.]/g, "\\.")}"`), route);
      const doc = (await (await fetch(prm)).json()) as { resource: string; authorization_servers: string[] };
      assert.equal(doc.resource, `${gw.url}${route}`);
      assert.ok(doc.authorization_servers.length > 0);
    }
  });

  test("browsers without a session are sent to Auth0", async () => {
    const page = await new TestBrowser().open(`${gw.url}/__tollgate/login`, { stopAt: (u) => u.origin !== gw.url });
    assert.equal(page.status, 0);
    assert.equal(`${page.url.origin}${page.url.pathname}`, `https://${SEED_ENV.AUTH0_DOMAIN}/authorize`);
    assert.equal(page.url.searchParams.get("client_id"), SEED_ENV.AUTH0_CLIENT_ID);
    assert.equal(page.url.searchParams.get("redirect_uri"), `${gw.url}/__tollgate/oauth/callback`);
  });

  test("Linear (metadata at the origin root): connect-required with every field, then the connected account", async () => {
    const token = await signInClient("/mcp/linear-v1");
    // Linear was connected on the setup page; the grant then disappears (revoked, disconnected).
    assert.ok(await disconnectGrant(gw.services, upstreamOAuthState(gw.services).upstreams.get("linear")!, "alice", "test"));

    // A client that did not declare URL elicitation: the JSON-RPC error, URL also in the message.
    const res = await fetch(`${gw.url}/mcp/linear-v1`, {
      method: "POST",
      headers: { ...MCP_HEADERS, authorization: `Bearer ${token}` },
      body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/list" }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      jsonrpc: string;
      id: number;
      error: { code: number; message: string; data: Record<string, unknown> & { elicitations: Array<Record<string, unknown>> } };
    };
    assert.equal(body.jsonrpc, "2.0");
    assert.equal(body.id, 7);
    assert.equal(body.error.code, -32042);
    const { data } = body.error;
    const authUrl = data.authUrl as string;
    assert.ok(authUrl.startsWith(`${gw.url}/__tollgate/auth/connections/linear/connect?redirect=true&`), authUrl);
    assert.ok(body.error.message.startsWith("Connect Linear to continue."), body.error.message);
    assert.ok(body.error.message.includes(authUrl), "the URL is in the message for clients without URL elicitation");
    assert.deepEqual(
      { ...data, elicitations: undefined },
      {
        state: "authenticating",
        upstreamServerId: "linear",
        operationId: "linear-mcp-server",
        authUrl,
        nextAction: "redirect",
        authProfileId: "linear:user-oauth",
        elicitations: undefined,
      },
    );
    assert.equal(data.elicitations.length, 1);
    const [e] = data.elicitations;
    assert.equal(e!.mode, "url");
    assert.equal(e!.url, authUrl);
    assert.equal(e!.message, "Connect Linear to continue.");
    assert.ok(typeof e!.elicitationId === "string" && e!.elicitationId.length > 0);

    // The same browser connects Linear; the gateway discovered it through the configured override.
    const done = await connectInBrowser(browser, authUrl, "alice-linear");
    assert.equal(done.status, 200, done.text.slice(0, 300));
    const discovered = gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "upstream OAuth discovery complete");
    assert.equal(discovered?.prm, `${linear.origin}/.well-known/oauth-protected-resource`);

    const c = sdkClient(gw.url, token, "/mcp/linear-v1");
    try {
      await c.connect();
      assert.equal(await whoami(c.client), "alice-linear");
    } finally {
      await c.close();
    }
    assert.ok(linear.seenAuthorizations.length > 0);
    assert.ok(!linear.seenAuthorizations.includes(`Bearer ${token}`), "the gateway's token never goes upstream");
  });

  test("API-key route: the configured header goes upstream, the caller's Authorization never", async () => {
    const token = await signInClient("/mcp/acme-v1");
    const c = sdkClient(gw.url, token, "/mcp/acme-v1");
    try {
      await c.connect();
      const r = (await c.client.callTool({ name: "echo", arguments: { text: "via key" } })) as { content: Array<{ text: string }> };
      assert.equal(r.content[0]!.text, "via key");
    } finally {
      await c.close();
    }
    assert.ok(acme.requests.length >= 2);
    for (const r of acme.requests) {
      assert.equal(r.headers["x-api-key"], SEED_ENV.ACME_API_KEY);
      assert.equal(r.headers.authorization, undefined);
    }
  });

  test("static-headers route: the headers are set, a caller's Authorization is not forwarded", async () => {
    const c = sdkClient(gw.url, "caller-credential-not-for-upstream", "/mcp/globex-v1");
    try {
      await c.connect();
      const r = (await c.client.callTool({ name: "echo", arguments: { text: "hi" } })) as { content: Array<{ text: string }> };
      assert.equal(r.content[0]!.text, "hi");
    } finally {
      await c.close();
    }
    assert.ok(globex.requests.length >= 2);
    for (const r of globex.requests) {
      assert.equal(r.headers["x-tenant"], SEED_ENV.GLOBEX_TENANT);
      assert.equal(r.headers["x-client"], "gateway");
      assert.equal(r.headers.authorization, undefined);
    }
  });

  test("anonymous route: proxies straight through", async () => {
    const client = new Client({ name: "seed", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp/public-v1`)));
    try {
      assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ["echo", "time"]);
      const r = (await client.callTool({ name: "echo", arguments: { text: "anon" } })) as { content: Array<{ text: string }> };
      assert.equal(r.content[0]!.text, "anon");
    } finally {
      await client.close();
    }
  });
});
