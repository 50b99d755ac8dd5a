/**
 * Header rules of the upstream hop: which inbound headers travel on, which upstream headers come
 * back, and the `X-Forwarded-*` set.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-7.6.1 Connection (hop-by-hop fields)
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices#token-passthrough
 */
import type { IncomingHttpHeaders } from "node:http";
import { HeaderMap } from "../../pipeline/header-map.js";

/** Hop-by-hop fields (RFC 9110 §7.6.1) plus what the hop recomputes itself. Lower-case. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "trailers",
  "transfer-encoding",
  "upgrade",
  "host",
  "http2-settings",
]);

/**
 * Inbound fields never forwarded: the caller's credentials belong to the gateway (no token
 * passthrough), `Origin` was checked by the gateway (which is the upstream's client; a browser
 * origin would only trip the upstream's own DNS-rebinding checks), the body length is
 * recomputed, and forwarding fields are rebuilt below.
 */
const REQUEST_DROP = new Set([
  ...HOP_BY_HOP,
  "authorization",
  "cookie",
  "origin",
  "content-length",
  "expect",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
]);

function isDroppedRequestHeader(name: string): boolean {
  return REQUEST_DROP.has(name) || name.startsWith("proxy-");
}

/** Names listed in a `Connection` header value (they are hop-by-hop too). */
function connectionTokens(value: string | null | undefined): Set<string> | undefined {
  // The common values name no other field: skip the split.
  if (!value || value === "keep-alive" || value === "close") return undefined;
  const out = new Set<string>();
  for (const t of value.split(",")) {
    const name = t.trim().toLowerCase();
    if (name && name !== "close" && name !== "keep-alive") out.add(name);
  }
  return out.size ? out : undefined;
}

/** What the forwarding fields are built from. */
export interface ForwardingInfo {
  /** Address of the TCP peer, when known. */
  remoteAddress: string | undefined;
  /** The scheme the client used (`http` / `https`). */
  proto: string;
  /** The `Host` the client used. */
  host: string;
}

/**
 * Builds the upstream request headers: end-to-end inbound headers (including `Mcp-Session-Id`,
 * `MCP-Protocol-Version`, `Last-Event-ID`, `Mcp-Method`, `Mcp-Name`, `Accept`, `Content-Type`),
 * without hop-by-hop fields, `Authorization`, `Cookie`, `Origin` or the `credentials` policies
 * consumed (`context.credentialHeaders`, lower-case); then `X-Forwarded-*`, the request id, and
 * finally `upstream` (credentials set by policies), which wins over everything.
 */
export function upstreamRequestHeaders(
  inbound: Headers,
  upstream: Record<string, string>,
  fwd: ForwardingInfo,
  requestId: string,
  credentials?: ReadonlySet<string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  const listed = connectionTokens(inbound.get("connection"));
  const consumed = credentials?.size ? credentials : undefined;
  if (inbound instanceof HeaderMap) {
    for (let i = 0; i < inbound.fieldCount; i++) forward(out, inbound.nameAt(i), inbound.valueAt(i), listed, consumed);
    for (const c of inbound.getSetCookie()) forward(out, "set-cookie", c, listed, consumed);
  } else for (const [name, value] of inbound) forward(out, name, value, listed, consumed);
  const xff = inbound.get("x-forwarded-for");
  if (fwd.remoteAddress) out["x-forwarded-for"] = xff ? `${xff}, ${fwd.remoteAddress}` : fwd.remoteAddress;
  else if (xff) out["x-forwarded-for"] = xff;
  out["x-forwarded-proto"] = fwd.proto;
  out["x-forwarded-host"] = fwd.host;
  out["x-request-id"] = requestId;
  for (const name in upstream) out[name.toLowerCase()] = upstream[name]!;
  return out;
}

/** Copies one inbound field onto the upstream's, unless it stays on this hop. */
function forward(out: Record<string, string>, name: string, value: string, listed: Set<string> | undefined, consumed: ReadonlySet<string> | undefined): void {
  if (isDroppedRequestHeader(name) || listed?.has(name) || consumed?.has(name)) return;
  out[name] = value;
}

/** Removes the credentials a policy added (before following a redirect to another origin). */
export function withoutCredentials(headers: Record<string, string>, upstream: Record<string, string>): Record<string, string> {
  const out = { ...headers };
  for (const name in upstream) delete out[name.toLowerCase()];
  delete out.authorization;
  return out;
}

/**
 * Converts the upstream's response headers (undici's lower-cased record) to the entries of a web
 * `Response`, without hop-by-hop fields. `Set-Cookie` stays a list.
 */
export function downstreamResponseHeaders(headers: IncomingHttpHeaders): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const conn = headers.connection;
  const listed = connectionTokens(Array.isArray(conn) ? conn.join(",") : conn);
  for (const name in headers) {
    if (RESPONSE_DROP.has(name) || listed?.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push([name, v]);
    else out.push([name, value]);
  }
  out.push(...CONTAINMENT);
  return out;
}

/**
 * Upstream response fields that never reach the client. The gateway's origin also serves the
 * login, consent and connect pages, so an upstream must not set cookies on it (it could plant
 * a session cookie) — and `proxy-authenticate` is meant for the hop it came from.
 */
const UPSTREAM_ONLY = ["proxy-authenticate", "set-cookie", "set-cookie2"];
/** Upstream response fields dropped: hop-by-hop ones and {@link UPSTREAM_ONLY}, in one set (one lookup per field). */
const RESPONSE_DROP = new Set([...HOP_BY_HOP, ...UPSTREAM_ONLY]);

/**
 * Added to every proxied answer: whatever an upstream sends is data for an MCP client, never a
 * page that runs on the gateway's origin (where it could read the consent page's CSRF token).
 */
const CONTAINMENT: Array<[string, string]> = [
  ["content-security-policy", "sandbox; default-src 'none'"],
  ["x-content-type-options", "nosniff"],
];

/** First value of an undici response header. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
