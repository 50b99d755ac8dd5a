/**
 * OAuth 2.0 Protected Resource Metadata for routes guarded by a bearer-token policy, and the
 * `WWW-Authenticate` challenge that points MCP clients at it.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728 OAuth 2.0 Protected Resource Metadata
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3 The WWW-Authenticate response header
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 */
import type { GatewayServices } from "../../pipeline/services.js";
import type { RouteConfig } from "../../pipeline/types.js";

/** Well-known prefix of RFC 9728 §3. */
export const PRM_PREFIX = "/.well-known/oauth-protected-resource";

/** The metadata URL for a resource path: the well-known segment goes between origin and path. */
export function resourceMetadataUrl(publicUrl: string, pathname: string): string {
  return `${publicUrl}${PRM_PREFIX}${pathname === "/" ? "" : pathname}`;
}

export interface ProtectedResourceInfo {
  /**
   * Issuer identifiers of the authorization servers that mint accepted tokens, or a function of
   * the concrete resource URL (the gateway's own server has one issuer per route).
   */
  authorizationServers: string[] | ((resource: string) => string[]);
  scopesSupported?: string[] | undefined;
  /** Further RFC 9728 fields (`resource_name`, …). */
  extra?: Record<string, unknown> | undefined;
}

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, OPTIONS",
  "access-control-max-age": "600",
};

/**
 * Registers `GET <prefix><route path>` for each route (path params stay params), answering the
 * RFC 9728 document whose `resource` is the public URL of the concrete path asked for.
 */
export function registerProtectedResource(
  services: GatewayServices,
  routes: RouteConfig[],
  info: ProtectedResourceInfo,
): void {
  for (const route of routes) {
    const tail = route.path === "/" ? "" : route.path.replace(/\{([A-Za-z0-9_]+)\}/g, ":$1");
    services.systemRoutes.add(["GET", "OPTIONS"], `${PRM_PREFIX}${tail}`, (request) => {
      if (request.method === "OPTIONS") {
        const asked = request.headers.get("access-control-request-headers");
        return new Response(null, {
          status: 204,
          headers: { ...CORS, "access-control-allow-headers": asked ?? "*" },
        });
      }
      const path = new URL(request.url).pathname.slice(PRM_PREFIX.length) || "/";
      const resource = `${services.settings.publicUrl}${path}`;
      const servers = info.authorizationServers;
      const doc: Record<string, unknown> = {
        resource,
        authorization_servers: typeof servers === "function" ? servers(resource) : servers,
        bearer_methods_supported: ["header"],
      };
      if (info.scopesSupported?.length) doc.scopes_supported = info.scopesSupported;
      Object.assign(doc, info.extra);
      return new Response(JSON.stringify(doc), {
        status: 200,
        headers: { ...CORS, "content-type": "application/json", "cache-control": "public, max-age=300" },
      });
    });
  }
}

/**
 * A Bearer challenge. `error` is omitted when the request carried no credentials (RFC 6750
 * §3.1); nothing from the request is echoed.
 */
export function bearerChallenge(opts: {
  error?: "invalid_token" | "insufficient_scope" | undefined;
  resourceMetadata?: string | undefined;
  scope?: string | undefined;
}): string {
  const params: string[] = [];
  if (opts.error) params.push(`error="${opts.error}"`);
  if (opts.scope) params.push(`scope="${opts.scope}"`);
  if (opts.resourceMetadata) params.push(`resource_metadata="${opts.resourceMetadata}"`);
  return params.length ? `Bearer ${params.join(", ")}` : "Bearer";
}
