/**
 * Finding an upstream MCP server's authorization server: protected resource metadata (RFC 9728)
 * first, then the authorization server's metadata (RFC 8414 / OpenID Connect Discovery) in the
 * order the MCP authorization spec prescribes. Every fetch goes through the SSRF guard.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#authorization-server-discovery
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3 Obtaining protected resource metadata
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3 Obtaining authorization server metadata
 */
import * as oauth from "oauth4webapi";
import { GatewayError } from "../errors.js";
import { bearerChallenge } from "./challenge.js";
import type { GuardedFetch } from "./ssrf.js";

/** What discovery found for one upstream. */
export interface UpstreamDiscovery {
  /** The canonical resource URI sent as `resource` (RFC 8707): PRM `resource`, else the upstream URL. */
  resource: string;
  /** Where the protected resource metadata came from (undefined: none found, origin used as AS). */
  prmUrl: string | undefined;
  /** PRM `scopes_supported`, when given. */
  scopesSupported: string[] | undefined;
  /** The authorization server's metadata (issuer verified). */
  as: oauth.AuthorizationServer;
}

/**
 * The URL the gateway derives from an upstream URL by inserting the well-known segment between
 * host and path: `https://h/mcp` → `https://h/.well-known/oauth-protected-resource/mcp`.
 */
export function wellKnownPrmUrl(upstream: URL, root = false): string {
  const path = root ? "" : upstream.pathname.replace(/\/+$/, "");
  return `${upstream.origin}/.well-known/oauth-protected-resource${path === "/" ? "" : path}`;
}

/**
 * The PRM URLs to try, in order: the configured override alone when set; else the upstream's
 * `resource_metadata` challenge when one was seen (the MCP spec gives it priority), the
 * path-inserted URL, and the origin root.
 */
export function prmCandidates(upstream: URL, override?: string, challengeUrl?: string): string[] {
  if (override) return [override];
  const list = [challengeUrl, wellKnownPrmUrl(upstream), wellKnownPrmUrl(upstream, true)];
  return [...new Set(list.filter((u): u is string => !!u))];
}

/**
 * Authorization server metadata URLs in MCP order. For issuer `https://as/t1`:
 * `/.well-known/oauth-authorization-server/t1`, `/.well-known/openid-configuration/t1`,
 * `/t1/.well-known/openid-configuration`; without a path, the first two without suffix.
 */
export function asMetadataCandidates(issuer: URL): string[] {
  const path = issuer.pathname.replace(/\/+$/, "");
  if (path === "" || path === "/") {
    return [
      `${issuer.origin}/.well-known/oauth-authorization-server`,
      `${issuer.origin}/.well-known/openid-configuration`,
    ];
  }
  return [
    `${issuer.origin}/.well-known/oauth-authorization-server${path}`,
    `${issuer.origin}/.well-known/openid-configuration${path}`,
    `${issuer.origin}${path}/.well-known/openid-configuration`,
  ];
}

/**
 * True when `resource` (from PRM) may stand for `upstream`: same origin, and the upstream's path
 * equals or lies below the resource's path.
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3.3 resource validation
 */
export function resourceMatches(resource: string, upstream: URL): boolean {
  let r: URL;
  try {
    r = new URL(resource);
  } catch {
    return false;
  }
  if (r.origin !== upstream.origin) return false;
  const rp = r.pathname.endsWith("/") ? r.pathname : `${r.pathname}/`;
  const up = upstream.pathname.endsWith("/") ? upstream.pathname : `${upstream.pathname}/`;
  return up.startsWith(rp);
}

/** The upstream URL as a resource identifier: no query, no fragment. */
export function canonicalResource(upstream: URL): string {
  const u = new URL(upstream.href);
  u.search = "";
  u.hash = "";
  return u.href;
}

function discoveryError(message: string, cause?: unknown, code = "upstream_discovery_failed"): GatewayError {
  return new GatewayError(code, 502, message, { cause });
}

async function getJson(fetch: GuardedFetch, url: string): Promise<Response> {
  return fetch(url, {
    headers: { accept: "application/json", "mcp-protocol-version": "2025-11-25" },
    redirect: "follow",
  });
}

/**
 * Sends the upstream an unauthenticated MCP `ping` to learn its `WWW-Authenticate` challenge.
 * Returns the header, or undefined when the upstream does not challenge.
 */
export async function probeChallenge(fetch: GuardedFetch, upstream: URL): Promise<string | undefined> {
  try {
    const res = await fetch(upstream, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: "tollgate-discovery", method: "ping" }),
      redirect: "manual",
    });
    return res.status === 401 ? (res.headers.get("www-authenticate") ?? undefined) : undefined;
  } catch {
    return undefined;
  }
}

/** Fetches protected resource metadata from the candidates; undefined when none exists. */
export async function fetchProtectedResourceMetadata(
  fetch: GuardedFetch,
  upstream: URL,
  candidates: string[],
): Promise<{ url: string; prm: oauth.ResourceServer } | undefined> {
  for (const url of candidates) {
    const res = await getJson(fetch, url);
    if (res.status >= 400 && res.status < 500) continue;
    if (res.status !== 200) throw discoveryError(`Protected resource metadata at ${url} answered ${res.status}.`);
    let claimed: unknown;
    try {
      claimed = await res.clone().json();
    } catch (cause) {
      throw discoveryError(`Protected resource metadata at ${url} is not JSON.`, cause);
    }
    const resource = (claimed as { resource?: unknown })?.resource;
    if (typeof resource !== "string" || !resourceMatches(resource, upstream)) {
      throw discoveryError(
        `Protected resource metadata at ${url} names resource ${JSON.stringify(resource)}, which does not cover ${upstream.href}.`,
        undefined,
        "upstream_resource_mismatch",
      );
    }
    try {
      const prm = await oauth.processResourceDiscoveryResponse(new URL(resource), res);
      return { url, prm };
    } catch (cause) {
      throw discoveryError(`Protected resource metadata at ${url} is malformed.`, cause);
    }
  }
  return undefined;
}

/** Fetches and verifies authorization server metadata (issuer echo, PKCE S256). */
export async function fetchAuthorizationServerMetadata(
  fetch: GuardedFetch,
  issuer: string,
): Promise<oauth.AuthorizationServer> {
  let issuerUrl: URL;
  try {
    issuerUrl = new URL(issuer);
  } catch (cause) {
    throw discoveryError("The upstream named an invalid authorization server.", cause);
  }
  for (const url of asMetadataCandidates(issuerUrl)) {
    const res = await getJson(fetch, url);
    if (res.status >= 400 && res.status < 500) continue;
    let as: oauth.AuthorizationServer;
    try {
      as = await oauth.processDiscoveryResponse(issuerUrl, res);
    } catch (cause) {
      throw discoveryError(`Authorization server metadata at ${url} is invalid or names another issuer.`, cause);
    }
    if (!as.code_challenge_methods_supported?.includes("S256")) {
      throw discoveryError(
        `The authorization server ${issuer} does not advertise PKCE S256; the gateway will not connect to it.`,
        undefined,
        "upstream_pkce_unsupported",
      );
    }
    if (!as.authorization_endpoint || !as.token_endpoint) {
      throw discoveryError(`Authorization server metadata at ${url} lacks an authorization or token endpoint.`);
    }
    return as;
  }
  throw discoveryError(`No authorization server metadata found for ${issuer}.`);
}

/**
 * Runs discovery for `upstream`. When no protected resource metadata exists (servers of the
 * 2025-03-26 generation), the upstream's origin is taken as the authorization server.
 */
export async function discoverUpstream(
  fetch: GuardedFetch,
  upstream: URL,
  opts: { prmOverride?: string | undefined; challengeUrl?: string | undefined; onChallenge?: (header: string) => void } = {},
): Promise<UpstreamDiscovery> {
  const candidates = prmCandidates(upstream, opts.prmOverride, opts.challengeUrl);
  let found = await fetchProtectedResourceMetadata(fetch, upstream, candidates);
  if (!found && opts.prmOverride) {
    throw discoveryError(`The configured protectedResourceMetadataUrl ${opts.prmOverride} was not found.`);
  }
  if (!found) {
    // PRM may live somewhere only the upstream's 401 challenge names: ask for one.
    const header = await probeChallenge(fetch, upstream);
    if (header) opts.onChallenge?.(header);
    const named = header ? bearerChallenge(header).resourceMetadata : undefined;
    if (named && !candidates.includes(named)) found = await fetchProtectedResourceMetadata(fetch, upstream, [named]);
  }
  const issuer = found ? found.prm.authorization_servers?.[0] : upstream.origin;
  if (!issuer) throw discoveryError("The upstream's protected resource metadata names no authorization server.");
  const as = await fetchAuthorizationServerMetadata(fetch, issuer);
  return {
    resource: found ? found.prm.resource : canonicalResource(upstream),
    prmUrl: found?.url,
    scopesSupported: found?.prm.scopes_supported,
    as,
  };
}
