/**
 * A complete OAuth-protected MCP upstream on one loopback port: the "Demo Notes" MCP server and
 * the authorization server that issues tokens for it, with switches for the discovery and
 * registration shapes real providers have (PRM at the path-inserted URL, at the origin root or
 * only named by the 401 challenge; an issuer with a path; DCR, CIMD or manual clients).
 *
 * `npm start` runs it as the quickstart's demo upstream; the test suite runs it as its OAuth
 * fixture.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728 OAuth 2.0 Protected Resource Metadata
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3.1 path insertion for AS metadata
 */
import http from "node:http";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import type Provider from "oidc-provider";
import {
  createAuthorizationServer,
  type ManualClient,
  type TokenRequestRecord,
} from "./authorization-server.js";
import { createResourceServer } from "./resource-server.js";
import { closeServer, hostForUrl, listen, sendJson } from "./http-util.js";

export type { ManualClient, TokenRequestRecord };

/** Which authorization server metadata documents are served (for issuer `https://as/t1`). */
export interface AsMetadataEndpoints {
  /** RFC 8414, path-inserted: `/.well-known/oauth-authorization-server/t1`. Default true. */
  oauth?: boolean;
  /** OIDC, path-inserted: `/.well-known/openid-configuration/t1`. Default false. */
  oidcInserted?: boolean;
  /** OIDC, path-appended: `/t1/.well-known/openid-configuration`. Default true. */
  oidcAppended?: boolean;
}

export interface OAuthUpstreamOptions {
  port?: number;
  host?: string;
  /** Name shown on the login page and by the MCP server. Default "Demo Notes". */
  name?: string;
  /** Path of the MCP endpoint. Default `/mcp`. */
  mcpPath?: string;
  /**
   * Where Protected Resource Metadata is served: `path` (`/.well-known/oauth-protected-resource/mcp`,
   * the default), `root` (only `/.well-known/oauth-protected-resource`), or `none` (only at
   * `/meta/protected-resource`, which only the 401 challenge names).
   */
  prm?: "path" | "root" | "none";
  /** `scopes_supported` in PRM; `false` leaves it out. Default: the resource's scopes. */
  prmScopes?: string[] | false;
  /** Issuer path, e.g. `/tenant1`. Default: none (the issuer is the origin). */
  issuerPath?: string;
  asMetadata?: AsMetadataEndpoints;
  registration?: { dcr: boolean; cimd: boolean; manual?: ManualClient[] };
  /**
   * TEST-ONLY: accept plain-http loopback URLs as Client ID Metadata Document client ids. The
   * draft requires https; this exists because tests run the gateway on http loopback.
   */
  allowHttpLoopbackClientIdUrls?: boolean;
  /** Scopes the resource knows. Default `["notes:read", "notes:write"]` plus `requiredScopes`. */
  resourceScopes?: string[];
  /**
   * Scopes granted when an authorization request names none. Default: the resource's scopes
   * that are not in `requiredScopes` (so a client that sends no scope meets the step-up path).
   */
  defaultScopes?: string[];
  /** Scopes every token must carry, else 403 `insufficient_scope`. Default none. */
  requiredScopes?: string[];
  /** `scope=` in the 401 challenge; `false` for none. Default: `requiredScopes` when not empty. */
  challengeScopes?: string[] | false;
  /** Only `tools/call` needs a token; initialize and tools/list work anonymously. */
  challengeOnlyAt?: "tools/call";
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  /** Sign in as this subject without showing the login form. */
  autoLoginSubject?: string;
  /**
   * Require `resource` on every token request (RFC 8707; the MCP authorization spec says clients
   * send it), answering `invalid_target` otherwise. Default true; false behaves like most
   * providers and binds the token to the resource of the grant.
   */
  requireResourceIndicator?: boolean;
  /** Receives one line per notable event (no secrets). */
  onEvent?: (line: string) => void;
}

export interface OAuthUpstream {
  origin: string;
  mcpUrl: string;
  issuer: string;
  /** The URL PRM is served at (the one the 401 challenge names). */
  prmUrl: string;
  /** The first AS metadata URL that exists. */
  asMetadataUrl: string;
  /** Token endpoint calls by `grant_type` (live object). */
  readonly tokenRequests: Record<string, number>;
  readonly tokenRequestLog: TokenRequestRecord[];
  /** Query parameters of each authorization request, in order. */
  readonly authorizationRequests: Array<Record<string, string>>;
  /** Client ID Metadata Document URLs the AS fetched. */
  readonly cimdFetches: string[];
  readonly revocationRequests: number;
  /** Every Authorization header value the MCP endpoint received. */
  readonly seenAuthorizations: string[];
  /** Answer the token endpoint with 503 while true. */
  setTokenEndpointDown(down: boolean): void;
  /** Revokes every grant (of `sub`, or of everyone): tokens and refresh tokens stop working. */
  revokeAll(sub?: string): Promise<number>;
  /** Deletes live access tokens (of `sub`, or all) as if they had expired; refresh tokens stay. */
  expireAccessTokens(sub?: string): number;
  /** Registers a client out of band (e.g. once the gateway's callback URL is known). */
  addClient(client: ManualClient): void;
  /** Ids of registered clients (DCR, manual and CIMD-resolved). */
  clientIds(): string[];
  /** Open MCP sessions. */
  readonly mcpSessions: number;
  provider: Provider;
  close(): Promise<void>;
}

const DEFAULT_SCOPES = ["notes:read", "notes:write"];

/** Starts the upstream; resolves once it listens. */
export async function startOAuthUpstream(opts: OAuthUpstreamOptions = {}): Promise<OAuthUpstream> {
  const host = opts.host ?? "127.0.0.1";
  const mcpPath = opts.mcpPath ?? "/mcp";
  const issuerPath = (opts.issuerPath ?? "").replace(/\/$/, "");
  const meta = { oauth: true, oidcInserted: false, oidcAppended: true, ...opts.asMetadata };
  const requiredScopes = opts.requiredScopes ?? [];
  const resourceScopes = [...new Set([...(opts.resourceScopes ?? DEFAULT_SCOPES), ...requiredScopes])];
  const prmMode = opts.prm ?? "path";
  const name = opts.name ?? "Demo Notes";
  const registration = opts.registration ?? { dcr: true, cimd: false };

  // The port must be known before the provider exists (its issuer is an absolute URL).
  let handler: http.RequestListener = (_req, res) => void res.writeHead(503).end();
  const server = http.createServer((req, res) => handler(req, res));
  const port = await listen(server, opts.port ?? 0, host);
  const origin = `http://${hostForUrl(host)}:${port}`;
  const issuer = `${origin}${issuerPath}`;
  const mcpUrl = `${origin}${mcpPath}`;
  const prmPaths = {
    path: `/.well-known/oauth-protected-resource${mcpPath}`,
    root: "/.well-known/oauth-protected-resource",
    none: "/meta/protected-resource",
  };
  const prmPath = prmPaths[prmMode];
  const prmUrl = `${origin}${prmPath}`;

  const as = await createAuthorizationServer({
    issuer,
    resource: mcpUrl,
    resourceScopes,
    defaultScopes: opts.defaultScopes ?? resourceScopes.filter((s) => !requiredScopes.includes(s)),
    dcr: registration.dcr,
    cimd: registration.cimd,
    manualClients: registration.manual ?? [],
    allowHttpLoopbackClientIdUrls: opts.allowHttpLoopbackClientIdUrls ?? false,
    accessTokenTtlSeconds: opts.accessTokenTtlSeconds ?? 3600,
    refreshTokenTtlSeconds: opts.refreshTokenTtlSeconds ?? 30 * 86_400,
    autoLoginSubject: opts.autoLoginSubject,
    requireResourceIndicator: opts.requireResourceIndicator ?? true,
    displayName: name,
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
  });
  const provider = as.provider;
  const seenAuthorizations: string[] = [];

  const verify = async (token: string): Promise<AuthInfo | undefined> => {
    const at = await provider.AccessToken.find(token);
    if (!at || at.isExpired) return undefined;
    const aud = at.aud as string | string[] | undefined;
    const audiences = Array.isArray(aud) ? aud : aud ? [aud] : [];
    if (!audiences.includes(mcpUrl)) return undefined;
    if (at.grantId && !(await provider.Grant.find(at.grantId))) return undefined;
    return {
      token,
      clientId: at.clientId ?? "",
      scopes: (at.scope ?? "").split(" ").filter(Boolean),
      expiresAt: at.exp,
      resource: new URL(mcpUrl),
      extra: { sub: at.accountId },
    };
  };

  const rs = createResourceServer({
    resource: mcpUrl,
    resourceMetadataUrl: prmUrl,
    requiredScopes,
    challengeScopes: opts.challengeScopes === false ? undefined : (opts.challengeScopes ?? (requiredScopes.length ? requiredScopes : undefined)),
    challengeOnlyAt: opts.challengeOnlyAt,
    verify,
    seenAuthorizations,
    name,
  });

  const prmDocument: Record<string, unknown> = {
    resource: mcpUrl,
    authorization_servers: [issuer],
    bearer_methods_supported: ["header"],
    resource_name: name,
  };
  if (opts.prmScopes !== false) prmDocument.scopes_supported = opts.prmScopes ?? resourceScopes;

  // The provider serves OIDC discovery under its own path; RFC 8414 copies are served from it.
  const providerCallback = provider.callback();
  const oidcAppended = `${issuerPath}/.well-known/openid-configuration`;
  const metadataPaths = new Set<string>();
  if (meta.oauth) metadataPaths.add(`/.well-known/oauth-authorization-server${issuerPath}`);
  if (meta.oidcInserted) metadataPaths.add(`/.well-known/openid-configuration${issuerPath}`);
  if (meta.oidcAppended) metadataPaths.add(oidcAppended);
  let discovery: Record<string, unknown> | undefined;

  const toProvider = (req: http.IncomingMessage, res: http.ServerResponse, path: string) => {
    if (!path.startsWith(`${issuerPath}/`)) return sendJson(res, 404, { error: "not_found" });
    const original = req.url ?? "/";
    (req as http.IncomingMessage & { originalUrl?: string }).originalUrl = original;
    req.url = original.slice(issuerPath.length);
    void providerCallback(req, res);
  };

  handler = (req, res) => {
    const url = new URL(req.url ?? "/", origin);
    const path = url.pathname;
    const fail = (err: unknown) => {
      opts.onEvent?.(`request failed: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) sendJson(res, 500, { error: "server_error" });
      else res.destroy();
    };
    try {
      if (path === mcpPath) return void rs.handle(req, res).catch(fail);
      if (path === prmPath && req.method === "GET") {
        return sendJson(res, 200, prmDocument, { "access-control-allow-origin": "*" });
      }
      if (req.method === "GET" && metadataPaths.has(path) && discovery) {
        return sendJson(res, 200, discovery, { "access-control-allow-origin": "*" });
      }
      // Before `discovery` is loaded, its own fetch reaches the provider here.
      if (path === oidcAppended) {
        if (!discovery || meta.oidcAppended) return toProvider(req, res, path);
        return sendJson(res, 404, { error: "not_found" });
      }
      if (path.startsWith("/.well-known/")) return sendJson(res, 404, { error: "not_found" });
      if (path.startsWith(`${issuerPath}/interaction/`)) {
        return void as
          .handleInteraction(req, res, path)
          .then((handled) => (handled ? undefined : sendJson(res, 404, { error: "not_found" })))
          .catch(fail);
      }
      toProvider(req, res, path);
    } catch (err) {
      fail(err);
    }
  };

  // Read the provider's discovery document once, through its own handler.
  const discoveryRes = await fetch(`${origin}${oidcAppended}`);
  if (!discoveryRes.ok) throw new Error(`demo upstream: discovery answered ${discoveryRes.status}`);
  discovery = (await discoveryRes.json()) as Record<string, unknown>;

  const asMetadataUrl = `${origin}${[...metadataPaths][0] ?? oidcAppended}`;
  return {
    origin,
    mcpUrl,
    issuer,
    prmUrl,
    asMetadataUrl,
    get tokenRequests() {
      return as.tokenRequests;
    },
    get tokenRequestLog() {
      return as.tokenRequestLog;
    },
    get authorizationRequests() {
      return as.authorizationRequests;
    },
    get cimdFetches() {
      return as.cimdFetches;
    },
    get revocationRequests() {
      return as.revocationRequests;
    },
    seenAuthorizations,
    setTokenEndpointDown(down) {
      as.tokenEndpointDown = down;
    },
    async revokeAll(sub) {
      const grants = as.storage.list("Grant").filter((g) => sub === undefined || g.payload.accountId === sub);
      for (const g of grants) {
        as.storage.deleteByGrantId(g.id);
        as.storage.delete("Grant", g.id);
      }
      return grants.length;
    },
    expireAccessTokens(sub) {
      const tokens = as.storage.list("AccessToken").filter((t) => sub === undefined || t.payload.accountId === sub);
      for (const t of tokens) as.storage.delete("AccessToken", t.id);
      return tokens.length;
    },
    addClient: as.addClient,
    clientIds: () => as.storage.list("Client").map((c) => c.id),
    get mcpSessions() {
      return rs.sessions.size;
    },
    provider,
    async close() {
      await rs.sessions.close();
      await closeServer(server);
    },
  };
}
