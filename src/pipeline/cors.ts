/**
 * CORS for project routes, from `corsPolicies` in `config/policies.json`. Route value `none`
 * (or absent) sends no CORS headers; `anything-goes` reflects any origin without credentials.
 */
import type { CorsPolicyConfig } from "../project/types.js";

/** The built-in `anything-goes` policy. */
export const ANYTHING_GOES: CorsPolicyConfig = {
  name: "anything-goes",
  allowedOrigins: ["*"],
  allowedHeaders: ["*"],
  allowedMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"],
  exposeHeaders: ["mcp-session-id", "mcp-protocol-version", "www-authenticate", "x-request-id"],
  maxAge: 600,
  allowCredentials: false,
};

function allowedOrigin(origin: string | null, cors: CorsPolicyConfig): string | undefined {
  if (!origin) return undefined;
  if (cors.allowedOrigins.includes("*")) return cors.allowCredentials ? origin : "*";
  return cors.allowedOrigins.includes(origin) ? origin : undefined;
}

/** Answers a CORS preflight. */
export function preflight(request: { readonly headers: Headers }, cors: CorsPolicyConfig): Response {
  const origin = allowedOrigin(request.headers.get("origin"), cors);
  const headers = new Headers({ vary: "Origin" });
  if (origin) {
    headers.set("access-control-allow-origin", origin);
    headers.set("access-control-allow-methods", cors.allowedMethods.join(", "));
    const asked = request.headers.get("access-control-request-headers");
    headers.set(
      "access-control-allow-headers",
      cors.allowedHeaders.includes("*") ? (asked ?? "*") : cors.allowedHeaders.join(", "),
    );
    if (cors.maxAge !== undefined) headers.set("access-control-max-age", String(cors.maxAge));
    if (cors.allowCredentials) headers.set("access-control-allow-credentials", "true");
  }
  return new Response(null, { status: 204, headers });
}

/** Adds CORS headers to an actual response (copying it when its headers are immutable). */
export function applyCors(request: { readonly headers: Headers }, response: Response, cors: CorsPolicyConfig): Response {
  const origin = allowedOrigin(request.headers.get("origin"), cors);
  if (!origin) return response;
  const set = (h: Headers) => {
    h.set("access-control-allow-origin", origin);
    h.append("vary", "Origin");
    if (cors.exposeHeaders.length) h.set("access-control-expose-headers", cors.exposeHeaders.join(", "));
    if (cors.allowCredentials) h.set("access-control-allow-credentials", "true");
  };
  try {
    set(response.headers);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    set(copy.headers);
    return copy;
  }
}
