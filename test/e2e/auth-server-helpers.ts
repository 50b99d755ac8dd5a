/**
 * Shared set-up of the authorization-server end-to-end tests: an IdP (oidc-provider), an
 * official-SDK MCP upstream, and a gateway with two routes protected by `mcp-oauth-inbound`.
 * Plus a manual OAuth client (DCR, browser authorization, token requests).
 */
import type { EdgeLimits } from "../../src/server/limits.js";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { startGateway, writeProject, type RunningGateway } from "../helpers/harness.js";
import { startIdp, type TestIdp } from "../fixtures/idp.js";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { TestBrowser, type BrowserPage } from "../fixtures/oauth-upstream.js";
import type { GatewaySettings } from "../../src/pipeline/services.js";

export const IDP_CLIENT = { clientId: "tollgate-gateway", clientSecret: "idp-client-secret-for-tests" };

export interface AuthEnv {
  gw: RunningGateway;
  idp: TestIdp | undefined;
  upstream: McpTestServer;
  /** A loopback server standing in for the MCP client's redirect URI (never actually called). */
  redirectUri: string;
  routeA: string;
  routeB: string;
  close(): Promise<void>;
}

export interface AuthEnvOptions {
  /** Use the dev login instead of an IdP. */
  devLogin?: boolean;
  /** The IdP to use (closed by the caller); default a fresh `startIdp()`. */
  idp?: TestIdp;
  /** Configure the IdP through the generic `mcp-oidc-oauth-inbound` preset (discovery at start-up). */
  oidcPreset?: boolean;
  /** Configure the IdP through another preset: its export, policyType and options (besides the client). */
  preset?: (idp: TestIdp) => { export: string; policyType: string; options: Record<string, unknown> };
  gateway?: Record<string, unknown>;
  settings?: Partial<GatewaySettings>;
  /** Edge limits of the Node server (e.g. trusted proxies). */
  limits?: Partial<EdgeLimits>;
  /** Extra policies (e.g. token exchange) and the names to add to route A's inbound list. */
  extraPolicies?: unknown[];
  routeAExtraInbound?: string[];
  /** More options of the MCP OAuth policy (e.g. `idJag`, `clients`). */
  authOptions?: Record<string, unknown>;
}

/** Starts IdP, upstream and gateway. */
export async function startAuthEnv(opts: AuthEnvOptions = {}): Promise<AuthEnv> {
  const upstream = await startMcpTestServer({ mode: "stateful" });
  const idp = opts.devLogin ? undefined : (opts.idp ?? (await startIdp()));
  const auth: Record<string, unknown> = { gateway: { ...opts.gateway }, ...opts.authOptions };
  if (idp) {
    auth.oidc = { issuer: idp.issuer, jwksUrl: idp.jwksUrl };
    auth.browserLogin = {
      url: idp.authorizationUrl,
      tokenUrl: idp.tokenUrl,
      clientId: IDP_CLIENT.clientId,
      clientSecret: "$env(IDP_CLIENT_SECRET)",
      scope: "openid profile email groups",
    };
  }
  if (idp && (opts.oidcPreset || opts.preset)) {
    idp.addClient({ clientId: "placeholder", clientSecret: "placeholder", redirectUris: ["http://127.0.0.1/unused"] });
  }
  const preset = idp && opts.preset?.(idp);
  const policy = preset
    ? { ...preset, options: { ...preset.options, ...IDP_CLIENT, clientSecret: "$env(IDP_CLIENT_SECRET)", scope: "openid profile email groups", gateway: auth.gateway } }
    : opts.oidcPreset
    ? { export: "McpOidcOAuthInboundPolicy", policyType: "mcp-oidc-oauth-inbound", options: { issuer: idp!.issuer, ...IDP_CLIENT, clientSecret: "$env(IDP_CLIENT_SECRET)", scope: "openid profile email groups", gateway: auth.gateway } }
    : { export: "McpOAuthInboundPolicy", policyType: "mcp-oauth-inbound", options: auth };
  const route = (operationId: string, inbound: string[]) => ({
    "get,post,delete": {
      operationId,
      "x-zuplo-route": {
        corsPolicy: "none",
        handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: "McpProxyHandler", options: { rewritePattern: upstream.url } },
        policies: { inbound },
      },
    },
  });
  const dir = await writeProject({
    "config/routes.oas.json": JSON.stringify({
      openapi: "3.1.0",
      info: { title: "auth server test", version: "1" },
      paths: {
        "/mcp/a": route("route-a", ["auth", ...(opts.routeAExtraInbound ?? [])]),
        "/mcp/b": route("route-b", ["auth"]),
      },
    }),
    "config/policies.json": JSON.stringify({
      policies: [
        {
          name: "auth",
          policyType: policy.policyType,
          handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: policy.export, options: policy.options },
        },
        ...(opts.extraPolicies ?? []),
      ],
    }),
  });
  const redirect = http.createServer((_req, res) => res.writeHead(200).end("client callback"));
  await new Promise<void>((r) => redirect.listen(0, "127.0.0.1", r));
  const gw = await startGateway({
    projectDir: dir,
    env: { IDP_CLIENT_SECRET: IDP_CLIENT.clientSecret, TOLLGATE_LOG_LEVEL: "info" },
    settings: { devLogin: !!opts.devLogin, ...opts.settings },
    limits: opts.limits,
  });
  idp?.addClient({ ...IDP_CLIENT, redirectUris: [`${gw.url}/__tollgate/oauth/callback`] });
  return {
    gw,
    idp,
    upstream,
    redirectUri: `http://127.0.0.1:${(redirect.address() as AddressInfo).port}/callback`,
    routeA: `${gw.url}/mcp/a`,
    routeB: `${gw.url}/mcp/b`,
    async close() {
      await gw.close();
      if (!opts.idp) await idp?.close();
      await upstream.close();
      await new Promise<void>((r) => redirect.close(() => r()));
    },
  };
}

/** PKCE pair. */
export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

/** Registers a public client by DCR. */
export async function registerClient(env: AuthEnv, body: Record<string, unknown> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${env.gw.url}/__tollgate/oauth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_name: "Test Client", redirect_uris: [env.redirectUri], token_endpoint_auth_method: "none", ...body }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Signs the browser in at the IdP (or the dev login) from a login page. */
export async function signIn(browser: TestBrowser, page: BrowserPage, user: string, stopAt?: (u: URL) => boolean): Promise<BrowserPage> {
  if (page.url.pathname.endsWith("/oauth/dev-login")) return browser.submit(page, { username: user }, stopAt ? { stopAt } : {});
  return browser.submit(page, { username: user, password: `${user}-pw` }, stopAt ? { stopAt } : {});
}

/**
 * Drives the browser part of an authorization: authorize → login → setup page → approve.
 * Returns the URL the gateway redirected to (the client's redirect URI with code or error).
 */
export async function browserAuthorize(
  env: AuthEnv,
  browser: TestBrowser,
  authorizeUrl: string,
  opts: { user?: string; decision?: "approve" | "cancel" } = {},
): Promise<{ redirectedTo: URL; consent: BrowserPage }> {
  const stopAt = (u: URL) => u.href.startsWith(env.redirectUri);
  let page = await browser.open(authorizeUrl, { stopAt });
  if (!page.url.pathname.includes("/oauth/setup")) page = await signIn(browser, page, opts.user ?? "alice", stopAt);
  if (!page.url.pathname.includes("/oauth/setup")) throw new Error(`expected the setup page, got ${page.url.href} ${page.status} ${page.text.slice(0, 300)}`);
  const consent = page;
  const done = await browser.submit(consent, {}, { button: { name: "decision", value: opts.decision ?? "approve" }, stopAt });
  if (done.status !== 0) throw new Error(`expected a redirect to the client, got ${done.status} ${done.text.slice(0, 300)}`);
  return { redirectedTo: done.url, consent };
}

/** Builds an authorize URL. */
export function authorizeUrl(env: AuthEnv, p: Record<string, string | undefined>): string {
  const u = new URL(`${env.gw.url}/__tollgate/oauth/authorize`);
  const all: Record<string, string | undefined> = {
    response_type: "code",
    redirect_uri: env.redirectUri,
    code_challenge_method: "S256",
    state: "st-123",
    resource: env.routeA,
    ...p,
  };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) u.searchParams.set(k, v);
  return u.href;
}

/** POSTs a form to the token (or another) endpoint. */
export async function tokenRequest(env: AuthEnv, form: Record<string, string>, path = "token"): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${env.gw.url}/__tollgate/oauth/${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Full manual flow: DCR client, browser authorization, code exchange. */
export async function obtainTokens(env: AuthEnv, resource = env.routeA, user = "alice"): Promise<{ clientId: string; tokens: Record<string, unknown> }> {
  const reg = await registerClient(env);
  const clientId = String(reg.json.client_id);
  const { verifier, challenge } = pkce();
  const browser = new TestBrowser();
  const { redirectedTo } = await browserAuthorize(env, browser, authorizeUrl(env, { client_id: clientId, code_challenge: challenge, resource }), { user });
  const code = redirectedTo.searchParams.get("code");
  if (!code) throw new Error(`no code: ${redirectedTo.href}`);
  const t = await tokenRequest(env, {
    grant_type: "authorization_code",
    code,
    code_verifier: verifier,
    client_id: clientId,
    redirect_uri: env.redirectUri,
    resource,
  });
  if (t.status !== 200) throw new Error(`token request failed: ${JSON.stringify(t.json)}`);
  return { clientId, tokens: t.json };
}

/** An MCP initialize POST with a bearer token. */
export async function mcpInitialize(url: string, token: string | undefined): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } },
    }),
  });
}
