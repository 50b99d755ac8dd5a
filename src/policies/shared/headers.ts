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
  const key = name.toLowerCase();
  const upstream = context.upstreamHeaders;
  const existing = Object.keys(upstream).find((k) => k.toLowerCase() === key);
  const forwarded = !NOT_FORWARDED.has(key) && !context.credentialHeaders.has(key) && request.headers.has(key);
  const upstreamHas = existing !== undefined || forwarded;
  if (overwrite || !upstreamHas) {
    if (existing !== undefined && existing !== key) delete upstream[existing];
    upstream[key] = value;
  }
  if (overwrite || !request.headers.has(key)) request.headers.set(key, value);
}

/** Removes a header from the request and from the headers queued for the upstream. */
export function removeUpstreamHeader(request: PipelineRequest, context: GatewayContext, name: string): void {
  const key = name.toLowerCase();
  for (const k of Object.keys(context.upstreamHeaders)) {
    if (k.toLowerCase() === key) delete context.upstreamHeaders[k];
  }
  request.headers.delete(key);
}
