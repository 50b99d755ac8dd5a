/**
 * Shared pieces of the upstream OAuth end-to-end tests: the inbound identity (real JWTs signed
 * with jose, verified by `open-id-jwt-auth-inbound` against a loopback JWKS), a project with one
 * token-exchange route, the official SDK client, and the browser walk through the connect flow
 * (dev login → confirmation → the upstream's login → callback).
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import "../../src/policies/open-id-jwt-auth-inbound/index.js";
import { makeKey, sign, startJwksServer, type JwksServer, type TestKey } from "../helpers/jwks-fixture.js";
import { TestBrowser, type BrowserPage } from "../fixtures/oauth-upstream.js";

export const IDP_ISSUER = "https://idp.tollgate.test";
export const AUDIENCE = "tollgate-e2e";

/** The MCP callers' identity provider: a JWKS server and a token minting function. */
export interface Identity {
  jwks: JwksServer;
  token(sub: string, extra?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export async function startIdentity(): Promise<Identity> {
  const key: TestKey = await makeKey("e2e-1");
  const jwks = await startJwksServer([key]);
  return {
    jwks,
    token: (sub, extra = {}) => sign(key, { iss: IDP_ISSUER, aud: AUDIENCE, sub, ...extra }, { expSecondsFromNow: 3600 }),
    close: () => jwks.close(),
  };
}

/** Options of the token-exchange policy under test (merged over a user-oauth default). */
export type ExchangeOptions = Record<string, unknown>;

/** Project files: one JWT-protected MCP route proxying to `upstreamUrl` with token exchange. */
export function projectFiles(jwksUrl: string, upstreamUrl: string, exchange: ExchangeOptions = {}, id = "notes"): Record<string, string> {
  const policies = {
    policies: [
      {
        name: "jwt-auth",
        policyType: "open-id-jwt-auth-inbound",
        handler: {
          module: "$import(@zuplo/runtime)",
          export: "OpenIdJwtInboundPolicy",
          options: { issuer: IDP_ISSUER, audience: AUDIENCE, jwkUrl: jwksUrl },
        },
      },
      {
        name: `mcp-token-exchange-${id}`,
        policyType: "mcp-token-exchange-inbound",
        handler: {
          module: "$import(@zuplo/runtime/mcp-gateway)",
          export: "McpTokenExchangeInboundPolicy",
          options: { displayName: "Demo Notes", authMode: "user-oauth", ...exchange },
        },
      },
    ],
  };
  const routes = {
    openapi: "3.1.0",
    info: { title: "e2e", version: "1" },
    paths: {
      "/mcp/notes": {
        "get,post,delete": {
          operationId: "notes-mcp",
          "x-zuplo-route": {
            corsPolicy: "none",
            handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: "McpProxyHandler", options: { rewritePattern: upstreamUrl } },
            policies: { inbound: ["jwt-auth", `mcp-token-exchange-${id}`] },
          },
        },
      },
    },
  };
  return { "config/policies.json": JSON.stringify(policies, null, 2), "config/routes.oas.json": JSON.stringify(routes, null, 2) };
}

/** An SDK client that declares URL elicitation. `connect()` may throw the connect-required error. */
export function sdkClient(gatewayUrl: string, bearer: string, path = "/mcp/notes") {
  const client = new Client({ name: "e2e-client", version: "1.0.0" }, { capabilities: { elicitation: { url: {} } } });
  const transport = new StreamableHTTPClientTransport(new URL(`${gatewayUrl}${path}`), {
    requestInit: { headers: { authorization: `Bearer ${bearer}` } },
  });
  return {
    client,
    transport,
    connect: () => client.connect(transport),
    /** Connects (the handshake succeeds with or without a grant), then lists tools (needs the upstream). */
    firstUse: async () => {
      await client.connect(transport);
      await client.listTools();
    },
    close: () => client.close().catch(() => {}),
  };
}

/** The data of a -32042 connect-required error (the SDK keeps `elicitations`). */
export function connectUrlOf(err: unknown): string {
  assert.ok(err instanceof McpError, `expected an McpError, got ${String(err)}`);
  assert.equal(err.code, -32042, `expected -32042, got ${err.code}: ${err.message}`);
  const url = (err.data as { elicitations?: Array<{ url: string }> }).elicitations?.[0]?.url;
  assert.ok(url, "connect-required carries a URL");
  return url;
}

/** Runs `fn` expecting a connect-required error and returns its connect URL. */
export async function expectConnectRequired(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    return connectUrlOf(err);
  }
  assert.fail("expected a connect-required error");
}

/** The connect link a first MCP request of `user` on `path` gets (connect-required). */
export async function connectLink(gatewayUrl: string, identity: Identity, user: string, path = "/mcp/notes"): Promise<string> {
  const c = sdkClient(gatewayUrl, await identity.token(user), path);
  try {
    return await expectConnectRequired(() => c.firstUse());
  } finally {
    await c.close();
  }
}

/**
 * What the setup-page browser tests share: the demo upstream, a notes gateway (below), an MCP
 * client's loopback redirect URI, and the client's first step — DCR registration and the
 * authorization URL of `/mcp/notes` with PKCE — under the gateway's base path.
 */
export async function startSetupPageEnv(opts: { title: string; plugin?: boolean }) {
  const { startOAuthUpstream } = await import("../fixtures/oauth-upstream.js");
  const { startCallbackServer } = await import("./clients-kit.js");
  const { pkce } = await import("./auth-server-helpers.js");
  const upstream = await startOAuthUpstream();
  const gw = await startNotesAuthGateway(upstream.mcpUrl, opts);
  const client = await startCallbackServer();
  const base = `${gw.url}${opts.plugin ? "/__zuplo" : "/__tollgate"}/oauth`;
  return {
    upstream,
    gw,
    redirectUri: client.url,
    /** Registers a public client; returns its authorization URL (with `params` added), id and PKCE verifier. */
    async authorization(clientName: string, params: Record<string, string>): Promise<{ url: string; clientId: string; verifier: string }> {
      const extra = params.scope ? { scope: params.scope } : {};
      const reg = await fetch(`${base}/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ client_name: clientName, redirect_uris: [client.url], token_endpoint_auth_method: "none", ...extra }),
      });
      const clientId = String(((await reg.json()) as { client_id: string }).client_id);
      const { verifier, challenge } = pkce();
      const u = new URL(`${base}/authorize/mcp/notes`);
      const all = { response_type: "code", client_id: clientId, redirect_uri: client.url, code_challenge: challenge, code_challenge_method: "S256", ...params };
      for (const [k, v] of Object.entries(all)) u.searchParams.set(k, v);
      return { url: u.href, clientId, verifier };
    },
    async close() {
      await gw.close();
      await upstream.close();
      await client.close();
    },
  };
}

/**
 * A gateway with its own OAuth server (dev login) in front of one per-user upstream, "Demo
 * Notes" at `/mcp/notes` — the route an MCP client's authorization walks through the setup page.
 * `plugin` adds `modules/zuplo.runtime.ts` with `McpGatewayPlugin` (base path `/__zuplo`).
 */
async function startNotesAuthGateway(upstreamMcpUrl: string, opts: { title: string; plugin?: boolean }) {
  const { startGateway, writeProject } = await import("../helpers/harness.js");
  const MCP = "$import(@zuplo/runtime/mcp-gateway)";
  const files: Record<string, string> = {
    "config/policies.json": JSON.stringify({
      policies: [
        { name: "auth", policyType: "mcp-oauth-inbound", handler: { module: MCP, export: "McpOAuthInboundPolicy", options: {} } },
        {
          name: "mcp-token-exchange-notes",
          policyType: "mcp-token-exchange-inbound",
          handler: { module: MCP, export: "McpTokenExchangeInboundPolicy", options: { displayName: "Demo Notes", authMode: "user-oauth" } },
        },
      ],
    }),
    "config/routes.oas.json": JSON.stringify({
      openapi: "3.1.0",
      info: { title: opts.title, version: "1" },
      paths: {
        "/mcp/notes": {
          "get,post": {
            operationId: "notes-mcp",
            "x-zuplo-route": {
              corsPolicy: "none",
              handler: { module: MCP, export: "McpProxyHandler", options: { rewritePattern: upstreamMcpUrl } },
              policies: { inbound: ["auth", "mcp-token-exchange-notes"] },
            },
          },
        },
      },
    }),
  };
  if (opts.plugin) {
    files["modules/zuplo.runtime.ts"] =
      `import { RuntimeExtensions } from "@zuplo/runtime";\nimport { McpGatewayPlugin } from "@zuplo/runtime/mcp-gateway";\n` +
      `export function runtimeInit(runtime: RuntimeExtensions) {\n  runtime.addPlugin(new McpGatewayPlugin());\n}\n`;
  }
  return startGateway({ projectDir: await writeProject(files), settings: { devLogin: true } });
}

/**
 * Opens a connect URL in `browser` as `username`: dev login (if asked), the gateway's
 * confirmation, the upstream's login and consent, and the callback. Returns the last page.
 */
export async function connectInBrowser(browser: TestBrowser, authUrl: string, username: string): Promise<BrowserPage> {
  return browser.walk(authUrl, {
    values: (page): Record<string, string> => (/name="username"/.test(page.text) ? { username } : {}),
  });
}

/**
 * Walks the gateway's authorization in the browser: sign-in (dev login as `user`), then the
 * setup page — each not-yet-connected upstream is connected through its Connect button (signing
 * in upstream as `upstreamUser`), which returns to the setup page — then Approve. Returns the
 * redirect to the client (status 0).
 */
export async function completeSetup(
  browser: TestBrowser,
  authorizationUrl: string | URL,
  stopAt: (u: URL) => boolean,
  opts: { user?: string; upstreamUser?: string } = {},
): Promise<BrowserPage> {
  const fill = (name: string | undefined) => (page: BrowserPage): Record<string, string> =>
    name && /name="username"/.test(page.text) ? { username: name } : {};
  let page = await browser.walk(authorizationUrl, { values: fill(opts.user ?? "alice"), stopAt: (u) => stopAt(u) || u.pathname.endsWith("/oauth/setup") });
  for (let i = 0; i < 5 && page.status === 0 && !stopAt(page.url); i++) {
    const setup = await browser.open(page.url, { stopAt });
    const link = /<a class="button big" href="([^"]+)"/.exec(setup.text)?.[1]?.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
    if (!link) return browser.submit(setup, {}, { button: { name: "decision", value: "approve" }, stopAt });
    page = await browser.walk(link, { values: fill(opts.upstreamUser ?? opts.user ?? "alice"), stopAt: (u) => u.pathname.endsWith("/oauth/setup") });
  }
  return page;
}

/** Calls the upstream's `whoami` tool and returns its text. */
export async function whoami(client: Client): Promise<string> {
  const r = (await client.callTool({ name: "whoami", arguments: {} })) as { content: Array<{ type: string; text?: string }> };
  return r.content.map((c) => c.text ?? "").join("");
}

/** A fixture upstream plus a gateway in front of it. */
export interface Scenario {
  upstream: import("../fixtures/oauth-upstream.js").OAuthUpstream;
  gw: import("../helpers/harness.js").RunningGateway;
  close(): Promise<void>;
}

/** Starts an upstream with `upstreamOpts` and a gateway with the token-exchange `exchange` options. */
export async function startScenario(
  identity: Identity,
  upstreamOpts: import("../fixtures/oauth-upstream.js").OAuthUpstreamOptions,
  exchange: ExchangeOptions = {},
  gateway: { env?: Record<string, string>; settings?: Record<string, unknown>; store?: import("../../src/store/types.js").Store } = {},
): Promise<Scenario> {
  const { startOAuthUpstream } = await import("../fixtures/oauth-upstream.js");
  const { startGateway, writeProject } = await import("../helpers/harness.js");
  const upstream = await startOAuthUpstream(upstreamOpts);
  try {
    const dir = await writeProject(projectFiles(identity.jwks.url, upstream.mcpUrl, exchange));
    const gw = await startGateway({
      projectDir: dir,
      settings: { devLogin: true, ...gateway.settings },
      ...(gateway.env ? { env: gateway.env } : {}),
      ...(gateway.store ? { store: gateway.store } : {}),
    });
    return {
      upstream,
      gw,
      async close() {
        await gw.close();
        await upstream.close();
      },
    };
  } catch (err) {
    await upstream.close();
    throw err;
  }
}

/** Full connect for `user`: the first call asks to connect, the browser connects, a new client works. */
export async function connectUser(s: Scenario, identity: Identity, user: string, browser = new TestBrowser(), gatewayUrl = s.gw.url) {
  const token = await identity.token(user);
  const first = sdkClient(gatewayUrl, token);
  let authUrl: string;
  try {
    await first.connect();
    authUrl = await expectConnectRequired(() => first.client.listTools());
  } catch (err) {
    authUrl = connectUrlOf(err);
  } finally {
    await first.close();
  }
  const page = await connectInBrowser(browser, authUrl, user);
  assert.equal(page.status, 200, `connect flow ended at ${page.url.href}: ${page.text.slice(0, 800)}`);
  assert.match(page.text, /is connected/);
  const c = sdkClient(gatewayUrl, token);
  await c.connect();
  return c;
}
