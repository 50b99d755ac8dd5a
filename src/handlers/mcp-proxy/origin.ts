/**
 * `Origin` validation for browser-originated MCP requests (DNS-rebinding protection).
 *
 * A page on `http://evil.example` whose name is re-pointed at a private address would send
 * `Origin: http://evil.example` and `Host: evil.example`, so "same as Host" alone proves nothing.
 * Accepted origins are therefore: the gateway's public origin, the configured `allowedOrigins`,
 * and — only when the request itself arrived on a loopback host name — loopback origins (local
 * tools such as MCP Inspector talking to a local gateway). Requests without `Origin`
 * (non-browser MCP clients) are not affected.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#security-warning
 */

const LOOPBACK_HOSTNAMES = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

function isLoopbackHostname(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return LOOPBACK_HOSTNAMES.has(h) || h.endsWith(".localhost") || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Host name part of a `Host` header value (`[::1]:8080` → `[::1]`, `a.b:80` → `a.b`). */
function hostnameOf(host: string): string {
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    return end > 0 ? host.slice(0, end + 1) : host;
  }
  const colon = host.indexOf(":");
  return colon < 0 ? host : host.slice(0, colon);
}

/**
 * Builds the check once. The returned function answers whether a request's `Origin` header value
 * may use the route; `host` is the request's `Host`.
 */
export function createOriginCheck(publicUrl: string, allowedOrigins: string[]): (origin: string, host: string) => boolean {
  const allowAny = allowedOrigins.includes("*");
  const accepted = new Set(allowedOrigins.map((o) => o.replace(/\/$/, "").toLowerCase()));
  try {
    accepted.add(new URL(publicUrl).origin.toLowerCase());
  } catch {
    // settings validate publicUrl; nothing to add when it is unusable
  }
  return (origin, host) => {
    if (allowAny) return true;
    const o = origin.toLowerCase();
    if (accepted.has(o)) return true;
    if (o === "null") return false;
    if (!isLoopbackHostname(hostnameOf(host))) return false;
    try {
      return isLoopbackHostname(new URL(o).hostname);
    } catch {
      return false;
    }
  };
}
