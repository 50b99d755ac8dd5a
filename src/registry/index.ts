/**
 * The read-only MCP Server Registry (API v0.1), generated from the project's MCP routes: one
 * server per `McpProxyHandler` route without path parameters. Mounted at the plugin's
 * `registry.path` (default `{basePath}/mcp-registry`), unauthenticated, CORS `*`, errors as
 * `{"error": "…"}`. Publishing and status changes are not offered (501 / 403); anything else
 * under the mount is 404.
 *
 * @see https://github.com/modelcontextprotocol/registry/blob/main/docs/reference/api/openapi.yaml
 * @see https://zuplo.com/docs/mcp-gateway/server-registry
 */
import { createHash } from "node:crypto";
import type { GatewayServices } from "../pipeline/services.js";
import type { Project, ResolvedRoute } from "../project/types.js";
import { upstreamOAuthState } from "../oauth/registry.js";

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, OPTIONS",
  "access-control-allow-headers": "*",
  "access-control-max-age": "600",
};
const ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const DEFAULT_LIMIT = 30;
const MAX_LIMIT = 100;
const MAX_NAME = 200;
const MAX_DESCRIPTION = 100;
/** Routes carry no version; the registry's version field is required. */
const ROUTE_VERSION = "0.0.0";
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

function reply(body: unknown, status = 200): Response {
  return new Response(body === null ? null : JSON.stringify(body), {
    status,
    headers: { ...CORS, "content-type": "application/json", "cache-control": "no-store" },
  });
}
const error = (status: number, message: string) => reply({ error: message }, status);

/** `gateway.example.com` → `com.example.gateway` (the port is dropped). */
export function reverseDns(hostname: string): string {
  return hostname.replace(/^\[|\]$/g, "").split(".").reverse().join(".");
}

/** `<reverse-DNS>/<operationId>`, at most 200 characters (longer: truncated, then a hash). */
export function serverName(hostname: string, operationId: string): string {
  const name = `${reverseDns(hostname)}/${operationId}`;
  if (name.length <= MAX_NAME) return name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 12);
  return `${name.slice(0, MAX_NAME - hash.length - 1)}-${hash}`;
}

/** At most `max` code points. */
function clip(s: string, max: number): string {
  const cps = [...s];
  return cps.length <= max ? s : `${cps.slice(0, max - 1).join("")}…`;
}

interface Entry {
  server: Record<string, unknown>;
  _meta: Record<string, unknown>;
}

/** The registry entries of the project's concrete MCP routes, sorted by name. */
function entries(project: Project, services: GatewayServices, hostname: string, publishedAt: string): Entry[] {
  const upstreams = upstreamOAuthState(services).upstreams;
  const out: Entry[] = [];
  for (const route of project.routes as ResolvedRoute[]) {
    if (!route.mcp || route.path.includes("{")) continue;
    const upstream = [...upstreams.values()].find((u) => u.operationIds.includes(route.operationId));
    const title = upstream?.displayName ?? route.operationId;
    const server: Record<string, unknown> = {
      name: serverName(hostname, route.operationId),
      title: clip(title, MAX_NAME),
      description: clip(upstream?.summary ?? `${title} through ${hostname}`, MAX_DESCRIPTION),
      version: ROUTE_VERSION,
      remotes: [{ type: "streamable-http", url: `${services.settings.publicUrl}${route.path}` }],
    };
    out.push({
      server,
      _meta: { "io.modelcontextprotocol.registry/official": { status: "active", publishedAt, updatedAt: publishedAt, isLatest: true } },
    });
  }
  return out.sort((a, b) => String(a.server.name).localeCompare(String(b.server.name)));
}

function listServers(all: Entry[], q: URLSearchParams): Response {
  const limitRaw = q.get("limit");
  let limit = DEFAULT_LIMIT;
  if (limitRaw !== null) {
    limit = Number(limitRaw);
    if (!/^\d+$/.test(limitRaw) || limit < 1) return error(400, "limit must be a positive integer");
    limit = Math.min(limit, MAX_LIMIT);
  }
  const since = q.get("updated_since");
  // Validated, never used to filter: every entry is as new as the running configuration.
  if (since !== null && (!RFC3339.test(since) || Number.isNaN(Date.parse(since)))) return error(400, "updated_since must be an RFC 3339 timestamp");
  const search = q.get("search")?.toLowerCase();
  const version = q.get("version");
  let list = all.filter((e) => (!search || String(e.server.name).toLowerCase().includes(search)) && (!version || version === "latest" || version === e.server.version));
  const cursor = q.get("cursor");
  if (cursor) {
    let after: string;
    try {
      after = Buffer.from(cursor, "base64url").toString("utf8");
    } catch {
      return error(400, "invalid cursor");
    }
    if (!after || Buffer.from(after).toString("base64url") !== cursor) return error(400, "invalid cursor");
    list = list.filter((e) => String(e.server.name) > after);
  }
  const page = list.slice(0, limit);
  const metadata: Record<string, unknown> = { count: page.length };
  if (list.length > limit) {
    // `nextCursor` is the registry API's name; Zuplo's documentation calls it `cursor`. Both carry it.
    metadata.nextCursor = Buffer.from(String(page.at(-1)!.server.name)).toString("base64url");
    metadata.cursor = metadata.nextCursor;
  }
  return reply({ servers: page, metadata });
}

/**
 * Registers the registry's endpoints under `mount`. `project` is read per request, so the
 * entries always match the running configuration.
 */
export function registerRegistry(services: GatewayServices, project: Project, mount: string): void {
  const r = services.systemRoutes;
  const base = `${mount}/v0.1`;
  const publishedAt = new Date(services.now()).toISOString();
  const all = (request: Request) => entries(project, services, new URL(request.url).hostname, publishedAt);
  const find = (request: Request, name: string | undefined) => all(request).find((e) => e.server.name === name);
  const preflight = () => reply(null, 204);

  r.add(["GET", "OPTIONS"], `${base}/servers`, (req) => (req.method === "OPTIONS" ? preflight() : listServers(all(req), new URL(req.url).searchParams)));
  r.add(["GET", "OPTIONS"], `${base}/servers/:name/versions`, (req, ctx) => {
    if (req.method === "OPTIONS") return preflight();
    const e = find(req, ctx.params.name);
    return e ? reply({ servers: [e], metadata: { count: 1 } }) : error(404, "Server not found");
  });
  r.add(["GET", "OPTIONS"], `${base}/servers/:name/versions/:version`, (req, ctx) => {
    if (req.method === "OPTIONS") return preflight();
    const e = find(req, ctx.params.name);
    if (!e || (ctx.params.version !== "latest" && ctx.params.version !== e.server.version)) return error(404, "Server not found");
    return reply(e);
  });
  r.add(["PUT", "DELETE"], `${base}/servers/:name/versions/:version`, () => error(501, "This registry is read-only: it is generated from the gateway's routes"));
  r.add(["POST"], `${base}/publish`, () => error(501, "This registry is read-only: it is generated from the gateway's routes"));
  for (const path of [`${base}/servers/:name/status`, `${base}/servers/:name/versions/:version/status`]) {
    r.add(["PATCH"], path, () => error(403, "Server status cannot be changed here"));
  }
  r.addPrefix(ALL_METHODS, mount, (req) => (req.method === "OPTIONS" ? preflight() : error(404, "Not found")));
}
