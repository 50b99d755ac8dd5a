/**
 * The gateway as OAuth authorization server for MCP clients: one per gateway, serving every
 * route protected by `mcp-oauth-inbound`. Each such route is a resource (RFC 8707) with its own
 * protected resource metadata, and its own issuer identifier `G{R}` (the route's URL) whose
 * metadata names the per-route authorization endpoint `G{B}/oauth/authorize{R}`; the gateway
 * origin `G` is the issuer for clients that start from the root metadata. Tokens are bound to
 * the resource.
 *
 * Endpoints (`B` = base path, see `routing/gateway-paths.ts`; `R` = route path):
 *
 * | path | what |
 * |---|---|
 * | `/.well-known/oauth-authorization-server[R]` | RFC 8414 metadata (also under `/.well-known/openid-configuration[R]`) |
 * | `/.well-known/oauth-protected-resource R` | RFC 9728 metadata |
 * | `B/oauth/authorize[R]` | authorization endpoint (browser); with `R` the resource is implied |
 * | `B/oauth/setup` | setup page (GET) and its decision (POST); `B/oauth/consent` is an alias |
 * | `B/oauth/token` | token endpoint |
 * | `B/oauth/register` | RFC 7591 dynamic client registration |
 * | `B/oauth/revoke` | RFC 7009 revocation |
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414 Authorization Server Metadata
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 */
import type { GatewayServices } from "../pipeline/services.js";
import { compilePath, type PathMatcher } from "../routing/match.js";
import { registerProtectedResource } from "../policies/shared/protected-resource.js";
import { gatewayPaths } from "../routing/gateway-paths.js";
import { browserLoginConfig, ensureWebRoutes } from "../web/index.js";
import { AUTH_METHODS, GRANT_TYPES } from "./clients.js";
import { authorize } from "./authorize.js";
import { JWT_BEARER_GRANT } from "./id-jag.js";
import { setupDecision, setupPage } from "./setup.js";
import { json, preflight } from "./http.js";
import { registerEndpoint, revokeEndpoint, tokenEndpoint } from "./token-endpoint.js";
import type { AuthServerConfig, ResourceConfig } from "./types.js";

/** The authorization server's state for one gateway. */
export interface AuthServer {
  readonly services: GatewayServices;
  readonly config: AuthServerConfig;
  readonly issuer: string;
  /** Endpoint URL under `<publicUrl><basePath>/oauth/`. */
  endpoint(name: string): string;
  /** The resource configuration for an exact resource URL, if it is one of ours. */
  resourceFor(resource: string): ResourceConfig | undefined;
  /** Every scope some resource supports. */
  knownScopes(): Set<string>;
  /** The resources (routes) this server protects. */
  resourceConfigs(): ResourceConfig[];
}

interface Internal extends AuthServer {
  resources: Array<{ matcher: PathMatcher; rc: ResourceConfig }>;
}

const servers = new WeakMap<GatewayServices, Internal>();

/** The authorization server of a gateway, if one was set up. */
export function getAuthServer(services: GatewayServices): AuthServer | undefined {
  return servers.get(services);
}

/** The documents' path prefixes: RFC 8414, and OpenID Connect Discovery (accepted by clients too). */
const AS_METADATA_PREFIXES = ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"];

/**
 * RFC 8414 metadata of the gateway's authorization server: the origin's (issuer `G`), or a
 * route's (`resourcePath` = the concrete route path: issuer `G{R}`, authorization endpoint
 * `G{B}/oauth/authorize{R}`).
 */
export function authServerMetadata(as: AuthServer, resource?: { rc: ResourceConfig; path: string }): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    issuer: resource ? `${as.issuer}${resource.path}` : as.issuer,
    authorization_endpoint: resource ? `${as.endpoint("authorize")}${resource.path}` : as.endpoint("authorize"),
    token_endpoint: as.endpoint("token"),
    revocation_endpoint: as.endpoint("revoke"),
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    // The JWT bearer grant (cross-app access) only where a route accepts it; trusted issuers are never listed.
    grant_types_supported: (resource ? !!resource.rc.idJag : as.resourceConfigs().some((rc) => rc.idJag)) ? [...GRANT_TYPES, JWT_BEARER_GRANT] : GRANT_TYPES,
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: AUTH_METHODS,
    revocation_endpoint_auth_methods_supported: AUTH_METHODS,
    scopes_supported: resource ? resource.rc.scopesSupported : [...as.knownScopes()],
    authorization_response_iss_parameter_supported: true,
    client_id_metadata_document_supported: as.config.cimdEnabled,
    "x-zuplo-browser-login-kind": browserLoginConfig(as.services) ? "federated_oidc" : "local_dev",
  };
  if (as.config.dcrEnabled) doc.registration_endpoint = as.endpoint("register");
  return doc;
}

function metadataHandler(as: AuthServer, rc?: ResourceConfig) {
  return (request: Request) => {
    if (request.method === "OPTIONS") return preflight();
    const pathname = new URL(request.url).pathname;
    const prefix = AS_METADATA_PREFIXES.find((p) => pathname.startsWith(p)) ?? "";
    const doc = authServerMetadata(as, rc ? { rc, path: pathname.slice(prefix.length) } : undefined);
    return json(doc, 200, { "cache-control": "public, max-age=300" });
  };
}

/** The system-route template of a route path (`{id}` params become `:id`; `/` becomes empty). */
function routeTail(path: string): string {
  return path === "/" ? "" : path.replace(/\{([A-Za-z0-9_]+)\}/g, ":$1");
}

/**
 * Sets up (once per gateway) the authorization server and its endpoints. Later calls return
 * the existing server. One server serves every route, so policies must agree on which clients
 * it accepts (`cimdEnabled`, `dcrEnabled`, `clients`): otherwise one route's open registration
 * would silently apply to another's, and the call throws (a start-up error). Other differences
 * are ignored with a warning; the first configuration applies.
 */
export function ensureAuthServer(services: GatewayServices, config: AuthServerConfig): AuthServer {
  const existing = servers.get(services);
  if (existing) {
    const clientsOf = (c: AuthServerConfig) => JSON.stringify([c.cimdEnabled, c.dcrEnabled, c.clients]);
    if (clientsOf(existing.config) !== clientsOf(config)) {
      throw new Error(
        "several mcp-oauth-inbound policies configure the gateway's authorization server with different clients " +
          "(gateway.cimdEnabled, gateway.dcrEnabled, clients); one authorization server serves every route, so they must agree",
      );
    }
    if (JSON.stringify(existing.config) !== JSON.stringify(config)) {
      services.log.warn("several mcp-oauth-inbound policies configure the authorization server differently; the first one applies");
    }
    return existing;
  }
  ensureWebRoutes(services);
  const { publicUrl, basePath } = services.settings;
  const as: Internal = {
    services,
    config,
    issuer: publicUrl,
    resources: [],
    endpoint: (name) => `${publicUrl}${basePath}/oauth/${name}`,
    resourceFor(resource) {
      if (!resource.startsWith(publicUrl)) return undefined;
      const path = resource.slice(publicUrl.length);
      if (!path.startsWith("/") || /[?#]/.test(path)) return undefined;
      return this.resources.find((r) => r.matcher.match(path))?.rc;
    },
    knownScopes() {
      return new Set(this.resources.flatMap((r) => r.rc.scopesSupported));
    },
    resourceConfigs() {
      return this.resources.map((r) => r.rc);
    },
  };
  servers.set(services, as);
  const r = services.systemRoutes;
  const p = gatewayPaths(basePath);
  for (const prefix of AS_METADATA_PREFIXES) r.add(["GET", "OPTIONS"], prefix, metadataHandler(as));
  r.add(["GET"], p.authorize, (req, ctx) => authorize(as, req, ctx));
  for (const path of [p.setup, p.legacy.consent]) {
    r.add(["GET"], path, (req, ctx) => setupPage(as, req, ctx));
    r.add(["POST"], path, (req, ctx) => setupDecision(as, req, ctx));
  }
  r.add(["POST", "OPTIONS"], p.token, (req) => (req.method === "OPTIONS" ? preflight() : tokenEndpoint(as, req)));
  r.add(["POST", "OPTIONS"], p.revoke, (req) => (req.method === "OPTIONS" ? preflight() : revokeEndpoint(as, req)));
  if (config.dcrEnabled) {
    r.add(["POST", "OPTIONS"], p.register, (req, ctx) =>
      req.method === "OPTIONS" ? preflight() : registerEndpoint(as, req, ctx.clientAddress ?? ctx.remoteAddress),
    );
  }
  return as;
}

/**
 * Adds a protected route (resource): its protected resource metadata (RFC 9728, naming the
 * route's own issuer), its per-route AS metadata, and its per-route authorization endpoint.
 */
export function addResource(as: AuthServer, rc: ResourceConfig): void {
  const internal = as as Internal;
  const { services } = as;
  internal.resources.push({ matcher: compilePath(rc.route.path), rc });
  registerProtectedResource(services, [rc.route], {
    authorizationServers: (resource) => [resource],
    scopesSupported: rc.scopesSupported,
    extra: {
      resource_name: rc.upstreams.length === 1 ? rc.upstreams[0]!.displayName : rc.route.operationId,
      mcp_protocol_version: MCP_PROTOCOL_VERSION,
    },
  });
  const tail = routeTail(rc.route.path);
  for (const prefix of AS_METADATA_PREFIXES) services.systemRoutes.add(["GET", "OPTIONS"], `${prefix}${tail}`, metadataHandler(as, rc));
  const authorizePath = gatewayPaths(services.settings.basePath).authorize;
  if (tail) services.systemRoutes.add(["GET"], `${authorizePath}${tail}`, (req, ctx) => authorize(as, req, ctx, authorizePath));
}

/** The MCP protocol version the protected resource metadata announces. */
export const MCP_PROTOCOL_VERSION = "2025-11-25";
