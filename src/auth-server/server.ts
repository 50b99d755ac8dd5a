/**
 * The gateway as OAuth authorization server for MCP clients: one per gateway (issuer = the
 * public origin), serving every route protected by `mcp-oauth-inbound`. Each such route is a
 * resource (RFC 8707) with its own protected resource metadata; tokens are bound to it.
 *
 * Endpoints (`<basePath>` default `/__tollgate`):
 *
 * | path | what |
 * |---|---|
 * | `/.well-known/oauth-authorization-server[<route path>]` | RFC 8414 metadata |
 * | `/.well-known/oauth-protected-resource<route path>` | RFC 9728 metadata |
 * | `<basePath>/oauth/authorize` | authorization endpoint (browser) |
 * | `<basePath>/oauth/consent` | consent page (GET) and decision (POST) |
 * | `<basePath>/oauth/token` | token endpoint |
 * | `<basePath>/oauth/register` | RFC 7591 dynamic client registration |
 * | `<basePath>/oauth/revoke` | RFC 7009 revocation |
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414 Authorization Server Metadata
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 */
import type { GatewayServices } from "../pipeline/services.js";
import { compilePath, type PathMatcher } from "../routing/match.js";
import { registerProtectedResource } from "../policies/shared/protected-resource.js";
import { ensureWebRoutes } from "../web/index.js";
import { AUTH_METHODS, GRANT_TYPES } from "./clients.js";
import { authorize, consentDecision, consentPage } from "./authorize.js";
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
}

interface Internal extends AuthServer {
  resources: Array<{ matcher: PathMatcher; rc: ResourceConfig }>;
}

const servers = new WeakMap<GatewayServices, Internal>();

/** The authorization server of a gateway, if one was set up. */
export function getAuthServer(services: GatewayServices): AuthServer | undefined {
  return servers.get(services);
}

/** RFC 8414 metadata of the gateway's authorization server. */
export function authServerMetadata(as: AuthServer, resource?: ResourceConfig): Record<string, unknown> {
  const authorize = new URL(as.endpoint("authorize"));
  // Per-route metadata names the route in the endpoint (RFC 6749 §3.1 lets an endpoint carry a
  // query), so clients that omit `resource` still ask for the right one.
  if (resource && !resource.route.path.includes("{")) authorize.searchParams.set("resource", `${as.issuer}${resource.route.path}`);
  const doc: Record<string, unknown> = {
    issuer: as.issuer,
    authorization_endpoint: authorize.href,
    token_endpoint: as.endpoint("token"),
    revocation_endpoint: as.endpoint("revoke"),
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    grant_types_supported: GRANT_TYPES,
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: AUTH_METHODS,
    revocation_endpoint_auth_methods_supported: AUTH_METHODS,
    scopes_supported: resource ? resource.scopesSupported : [...as.knownScopes()],
    authorization_response_iss_parameter_supported: true,
    client_id_metadata_document_supported: as.config.cimdEnabled,
  };
  if (as.config.dcrEnabled) doc.registration_endpoint = as.endpoint("register");
  return doc;
}

function metadataHandler(as: AuthServer, rc?: ResourceConfig) {
  return (request: Request) =>
    request.method === "OPTIONS"
      ? preflight()
      : json(authServerMetadata(as, rc), 200, { "cache-control": "public, max-age=300" });
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
  };
  servers.set(services, as);
  const r = services.systemRoutes;
  const o = `${basePath}/oauth`;
  r.add(["GET", "OPTIONS"], "/.well-known/oauth-authorization-server", metadataHandler(as));
  r.add(["GET"], `${o}/authorize`, (req, ctx) => authorize(as, req, ctx));
  r.add(["GET"], `${o}/consent`, (req, ctx) => consentPage(as, req, ctx));
  r.add(["POST"], `${o}/consent`, (req, ctx) => consentDecision(as, req, ctx));
  r.add(["POST", "OPTIONS"], `${o}/token`, (req) => (req.method === "OPTIONS" ? preflight() : tokenEndpoint(as, req)));
  r.add(["POST", "OPTIONS"], `${o}/revoke`, (req) => (req.method === "OPTIONS" ? preflight() : revokeEndpoint(as, req)));
  if (config.dcrEnabled) {
    r.add(["POST", "OPTIONS"], `${o}/register`, (req, ctx) =>
      req.method === "OPTIONS" ? preflight() : registerEndpoint(as, req, ctx.clientAddress ?? ctx.remoteAddress),
    );
  }
  return as;
}

/** Adds a protected route (resource): its protected resource metadata and per-route AS metadata. */
export function addResource(as: AuthServer, rc: ResourceConfig): void {
  const internal = as as Internal;
  const { services } = as;
  internal.resources.push({ matcher: compilePath(rc.route.path), rc });
  registerProtectedResource(services, [rc.route], {
    authorizationServers: [as.issuer],
    scopesSupported: rc.scopesSupported,
  });
  const tail = rc.route.path === "/" ? "" : rc.route.path.replace(/\{([A-Za-z0-9_]+)\}/g, ":$1");
  services.systemRoutes.add(["GET", "OPTIONS"], `/.well-known/oauth-authorization-server${tail}`, metadataHandler(as, rc));
}
