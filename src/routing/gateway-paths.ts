/**
 * Where the gateway's own endpoints live, and which base path they hang from.
 *
 * The base path `B` is chosen once per gateway build ({@link chooseBasePath}):
 *
 * 1. the `basePath` option of `McpGatewayPlugin` in the project's `modules/zuplo.runtime.ts`;
 * 2. `/__zuplo` when the project registers the plugin without that option (Zuplo's default,
 *    so a Zuplo project's registered redirect URIs keep working);
 * 3. `TOLLGATE_BASE_PATH` for projects without the plugin;
 * 4. `/__tollgate`.
 *
 * `""` stands for the origin root (`basePath: "/"`). RFC 8414 and RFC 9728 documents stay at the
 * origin root whatever `B` is.
 *
 * @see https://zuplo.com/docs/programmable-api/mcp-gateway-plugin
 */
import type { GatewaySettings } from "../pipeline/services.js";

/** Zuplo's default base path, used for projects that register `McpGatewayPlugin`. */
export const ZUPLO_BASE_PATH = "/__zuplo";

/** The MCP gateway plugin's settings after validation (see `project/runtime-init.ts`). */
export interface McpGatewayPluginConfig {
  /** Normalised: leading slash, no trailing slash, `""` for the origin root. */
  basePath: string;
  registry: { enabled: boolean; path: string };
}

/** Normalises a path option: leading slash, no trailing slash; `/` becomes `""`. */
export function normalizeMountPath(raw: string): string {
  const t = raw.trim();
  if (t === "" || t === "/") return "";
  return (t.startsWith("/") ? t : `/${t}`).replace(/\/+$/, "");
}

/** The base path of a gateway build: plugin option, `/__zuplo` with the plugin, else the setting. */
export function chooseBasePath(plugin: McpGatewayPluginConfig | undefined, settings: GatewaySettings): string {
  return plugin ? plugin.basePath : settings.basePath;
}

/** True when `path` is `prefix` or below it (`""` is the root: everything is below it). */
export function isUnder(path: string, prefix: string): boolean {
  return prefix === "" || path === prefix || path.startsWith(`${prefix}/`);
}

/**
 * Path prefixes the gateway serves under `B`. With a non-empty `B` the whole subtree is the
 * gateway's; at the origin root only these prefixes are.
 */
export function reservedPrefixes(basePath: string): string[] {
  if (basePath !== "") return [basePath];
  return ["/oauth", "/auth/connections", "/.well-known/oauth-client", "/connections", "/login", "/logout", "/api/connections", "/admin/connections"];
}

/** Route paths that would be shadowed by (or shadow) the gateway's endpoints under `B`. */
export function collidingRoutes(basePath: string, routePaths: string[]): string[] {
  const prefixes = reservedPrefixes(basePath);
  return routePaths.filter((p) => prefixes.some((pre) => isUnder(p, pre)));
}

/** Why a registry mount would shadow a gateway endpoint, or undefined when it does not. */
export function registryShadowing(registryPath: string, basePath: string): string | undefined {
  const authorize = `${basePath}/oauth/authorize`;
  if (isUnder("/.well-known", registryPath) || isUnder(registryPath, "/.well-known")) {
    return "it would shadow the /.well-known documents";
  }
  if (isUnder(authorize, registryPath) || isUnder(registryPath, authorize)) {
    return `it would shadow the authorization endpoints (${authorize}/…)`;
  }
  if (basePath !== "" && isUnder(basePath, registryPath)) return `it would shadow the gateway's endpoints under ${basePath}`;
  return undefined;
}

/** URL paths of the documented endpoints under a base path. */
export function gatewayPaths(basePath: string) {
  const o = `${basePath}/oauth`;
  return {
    authorize: `${o}/authorize`,
    callback: `${o}/callback`,
    setup: `${o}/setup`,
    token: `${o}/token`,
    register: `${o}/register`,
    revoke: `${o}/revoke`,
    devLogin: `${o}/dev-login`,
    logout: `${basePath}/logout`,
    /** `:id` is the upstream connection id. */
    connect: `${basePath}/auth/connections/:id/connect`,
    connectCallback: `${basePath}/auth/connections/:id/callback`,
    clientMetadata: `${basePath}/.well-known/oauth-client/:id`,
    /** Earlier paths, served by the same handlers. */
    legacy: {
      consent: `${o}/consent`,
      idpCallback: `${basePath}/login/callback`,
      devLogin: `${basePath}/login/dev`,
      connect: `${basePath}/connections/:id/connect`,
      connectCallback: `${basePath}/connections/:id/callback`,
    },
  };
}
