/**
 * Adapter that lets the official MCP conformance suite (`conformance client --suite auth`) test
 * the gateway's upstream OAuth client. The suite starts a scenario (an MCP server plus an
 * authorization server) and runs this script with the server URL as its last argument.
 *
 * The script is an MCP client (the official SDK's) whose HTTP layer uses exactly the gateway's
 * upstream OAuth code — `UpstreamOAuth` (discovery, registration, authorization request,
 * callback validation, code exchange, refresh), the SSRF-guarded fetch and `GrantManager`
 * (encrypted grants, refresh) — the way `mcp-token-exchange-inbound` does per request:
 *
 * - a 401 records the challenge and, without a grant, runs the authorization code flow (the
 *   scenario's authorization endpoint redirects straight back with a code, so no browser is
 *   needed), else refreshes once;
 * - a 403 `insufficient_scope` steps up with the union of scopes, within the gateway's limit.
 *
 * Scenario inputs: `MCP_CONFORMANCE_CONTEXT` may carry pre-registered `client_id`/`client_secret`
 * (manual registration, `client_secret_basic`). The client ID metadata document URL is the one
 * the suite expects; in the gateway it is `<publicUrl><basePath>/.well-known/oauth-client/<id>`.
 *
 * Usage: node --import tsx scripts/conformance-auth-client.ts <server-url>
 */
import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { createLogger } from "../src/log.js";
import { bearerChallenge } from "../src/oauth/challenge.js";
import { GrantManager, grantKey, type GrantMeta, type Refresher } from "../src/oauth/grants.js";
import type { ClientRegistrationConfig } from "../src/oauth/registration.js";
import { stepUpScopes } from "../src/oauth/scopes.js";
import { createGuardedFetch } from "../src/oauth/ssrf.js";
import { UpstreamOAuth } from "../src/oauth/upstream.js";
import { createSecretBox } from "../src/store/crypto.js";
import { MemoryStore } from "../src/store/memory.js";

const CIMD_URL = "https://conformance-test.local/client-metadata.json";
const REDIRECT_URI = "http://localhost:3000/callback";

const serverUrl = process.argv[process.argv.length - 1];
if (!serverUrl || !/^https?:\/\//.test(serverUrl)) {
  process.stderr.write("usage: conformance-auth-client.ts <server-url>\n");
  process.exit(2);
}
const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? "{}") as { client_id?: string; client_secret?: string };
const registration: ClientRegistrationConfig = context.client_id
  ? {
      mode: "manual",
      clientId: context.client_id,
      clientSecret: context.client_secret,
      tokenEndpointAuthMethod: context.client_secret ? "client_secret_basic" : "none",
    }
  : { mode: "auto" };

const log = createLogger({ level: process.env.TOLLGATE_LOG_LEVEL ?? "warn", destination: process.stderr });
const store = new MemoryStore();
const secrets = createSecretBox([{ id: "k1", key: randomBytes(32) }]);
const guarded = createGuardedFetch({ allowPrivate: true, allowedHosts: [] });
const oauth = new UpstreamOAuth(
  {
    id: "conformance",
    displayName: "Tollgate conformance client",
    upstreamUrl: new URL(serverUrl),
    scopeDelimiter: " ",
    registration,
    redirectUri: REDIRECT_URI,
    clientMetadataUrl: CIMD_URL,
  },
  { store, secrets, log, fetch: guarded, now: Date.now },
);
const grants = new GrantManager({ store, secrets, log, now: Date.now });
const key = grantKey("conformance", "conformance-user");
const refresher: Refresher = (g) =>
  oauth.refresh({ issuer: g.meta.issuer, clientId: g.meta.clientId, refreshToken: g.secret.refreshToken!, resource: g.meta.resource });

/** Runs the authorization code flow; the scenario's AS answers the authorization request with a redirect. */
async function authorize(scopes: string[] | undefined, stepUps: number): Promise<string> {
  const start = await oauth.beginAuthorization({ scopes });
  const res = await fetch(start.url, { redirect: "manual" });
  const location = res.headers.get("location");
  await res.body?.cancel();
  if (!location) throw new Error(`authorization endpoint answered ${res.status} without a redirect`);
  const callback = new URL(location, start.url);
  if (`${callback.origin}${callback.pathname}` !== REDIRECT_URI) throw new Error("redirected somewhere else than the redirect URI");
  const tokens = await oauth.completeAuthorization(start.pending, callback.searchParams);
  const meta: GrantMeta = {
    upstreamId: "conformance",
    mode: "user",
    subject: "conformance-user",
    issuer: start.pending.issuer,
    clientId: start.pending.clientId,
    resource: start.pending.resource,
    scopes: start.pending.scopes,
    grantedScope: tokens.scope,
    expiresAt: tokens.expiresAt,
    obtainedAt: Date.now(),
    hasRefreshToken: tokens.refreshToken !== undefined,
    createdAt: Date.now(),
    refreshedAt: undefined,
    stepUps,
  };
  await grants.write(key, meta, tokens);
  return tokens.accessToken;
}

/** fetch for the MCP transport: upstream credentials the way the token-exchange policy applies them. */
async function mcpFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  const send = (token: string | undefined) => {
    const headers = new Headers(init.headers);
    if (token) headers.set("authorization", `Bearer ${token}`);
    return fetch(input, { ...init, headers });
  };
  const current = await grants.token(key, refresher);
  let token = current.kind === "ok" ? current.token : undefined;
  let res = await send(token);
  if (res.status === 401) {
    oauth.noteChallenge(res.headers.get("www-authenticate") ?? undefined);
    await res.body?.cancel();
    if (token) {
      const r = await grants.refreshAfterRejection(key, token, refresher);
      token = r.kind === "ok" ? r.token : await authorize(undefined, 0);
    } else token = await authorize(undefined, 0);
    res = await send(token);
  } else if (res.status === 403 && token) {
    const www = res.headers.get("www-authenticate") ?? undefined;
    const c = bearerChallenge(www);
    const g = await grants.read(key);
    const scopes = c.error === "insufficient_scope" && g ? stepUpScopes({ requested: g.meta.scopes, challengeScope: c.scope, stepUps: g.meta.stepUps }) : undefined;
    if (scopes && g) {
      oauth.noteChallenge(www);
      await res.body?.cancel();
      token = await authorize(scopes, g.meta.stepUps + 1);
      res = await send(token);
    }
  }
  return res;
}

async function main(): Promise<void> {
  const client = new Client({ name: "tollgate-upstream-oauth", version: "1.0.0" }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl!), { fetch: mcpFetch });
  try {
    await client.connect(transport);
    await client.listTools();
    await client.callTool({ name: "test-tool", arguments: {} });
  } finally {
    await transport.close().catch(() => {});
    await guarded.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : "";
    process.stderr.write(`conformance client failed: ${err instanceof Error ? err.message : String(err)}${cause}\n`);
    process.exit(1);
  },
);
