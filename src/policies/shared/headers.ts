/**
 * Writing upstream headers. The MCP proxy never forwards the inbound request's `Authorization`;
 * it sends `context.upstreamHeaders` on top of the (filtered) inbound headers. Custom handlers
 * see the request object, so header policies write to both places.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-5 HTTP fields
 */
import { z } from "zod";
import type { GatewayContext, PipelineRequest } from "../../pipeline/types.js";

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Headers the gateway manages per hop; a policy must not set them. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "content-length",
]);

/** Inbound headers the MCP proxy never forwards (they belong to the caller's hop). */
const NOT_FORWARDED = new Set(["authorization", "cookie", "origin"]);

/** A header field name (RFC 9110 token), excluding hop-by-hop and framing headers. */
export const headerNameSchema = z
  .string()
  .regex(TOKEN_RE, { error: "must be a valid HTTP header name" })
  .refine((n) => !HOP_BY_HOP.has(n.toLowerCase()), {
    error: "hop-by-hop and framing headers (connection, content-length, transfer-encoding, …) cannot be set",
  });

/** A header field value: no CR, LF or NUL (those would split or truncate the header). */
export const headerValueSchema = z.string().refine((v) => !/[\r\n\0]/.test(v), {
  error: "must not contain CR, LF or NUL characters",
});

/**
 * Sets a header on the upstream request. With `overwrite` false, an existing value wins:
 * for the upstream that is a value another policy already set, or an inbound header the proxy
 * forwards (the inbound `Authorization`, `Cookie`, `Origin` and headers a policy consumed as a
 * credential are never forwarded, so they do not count).
 */
export function setUpstreamHeader(
  request: PipelineRequest,
  context: GatewayContext,
  name: string,
  value: string,
  overwrite: boolean,
): void {
  setUpstreamField(request, context, name.toLowerCase(), value, overwrite);
}

/**
 * A header name lower-cased once, where a policy is built: its per-request writes then use the
 * same string every time, so the lookups keyed by it find a hash already computed.
 */
export function headerKey(name: string): string {
  // A property key is kept in V8's string table: reading it back gives that one copy.
  return Object.keys({ [name.toLowerCase()]: 0 })[0]!;
}

/** {@link setUpstreamHeader} for a name already lower-cased (see {@link headerKey}). */
export function setUpstreamField(request: PipelineRequest, context: GatewayContext, key: string, value: string, overwrite: boolean): void {
  const upstream = context.upstreamHeaders;
  // A name another policy queued in other letter case counts as the same field.
  let existing: string | undefined;
  for (const k in upstream) {
    if (k === key || k.toLowerCase() === key) {
      existing = k;
      break;
    }
  }
  const inRequest = request.headers.has(key);
  const forwarded = inRequest && !NOT_FORWARDED.has(key) && !context.credentialHeaders.has(key);
  if (overwrite || (existing === undefined && !forwarded)) {
    if (existing !== undefined && existing !== key) delete upstream[existing];
    upstream[key] = value;
  }
  if (overwrite || !inRequest) request.headers.set(key, value);
}

/** Removes a header from the request and from the headers queued for the upstream. */
export function removeUpstreamHeader(request: PipelineRequest, context: GatewayContext, name: string): void {
  const key = name.toLowerCase();
  for (const k of Object.keys(context.upstreamHeaders)) {
    if (k.toLowerCase() === key) delete context.upstreamHeaders[k];
  }
  request.headers.delete(key);
}
