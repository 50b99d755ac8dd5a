/**
 * HTTP helpers of the authorization server: JSON answers, OAuth error bodies and CORS.
 *
 * CORS: the metadata, registration, token and revocation endpoints answer any origin with
 * `Access-Control-Allow-Origin: *` and never allow credentials. Browser-based MCP clients need
 * this, and none of these endpoints relies on ambient credentials (cookies), so a foreign page
 * gains nothing it could not do from a server. The browser pages (authorize, consent) send no
 * CORS headers at all.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2 Error response
 */
import { createHash, randomBytes } from "node:crypto";

/** CORS headers for the machine-facing endpoints. */
export const API_CORS: Record<string, string> = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, OPTIONS",
  "access-control-allow-headers": "authorization, content-type, mcp-protocol-version",
  "access-control-max-age": "600",
};

/** A JSON response with `no-store` and CORS (unless `cors: false`). */
export function json(body: unknown, status = 200, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "content-type": "application/json",
      "cache-control": "no-store",
      pragma: "no-cache",
      "x-content-type-options": "nosniff",
      ...API_CORS,
      ...extra,
    },
  });
}

/** An OAuth error body (`{error, error_description}`), status 400 unless given. */
export function oauthError(error: string, description: string, status = 400, extra: Record<string, string> = {}): Response {
  return json({ error, error_description: description }, status, extra);
}

/** Answers a CORS preflight for the API endpoints. */
export function preflight(): Response {
  return new Response(null, { status: 204, headers: API_CORS });
}

/** SHA-256, base64url. */
export function sha256(s: string): string {
  return createHash("sha256").update(s).digest("base64url");
}

/** A random url-safe string of `bytes` random bytes. */
export function random(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

/** Reads a bounded form body; undefined when it is not a form or too big. */
export async function formBody(request: Request, maxBytes = 16 * 1024): Promise<URLSearchParams | undefined> {
  const type = (request.headers.get("content-type") ?? "").toLowerCase();
  if (!type.startsWith("application/x-www-form-urlencoded")) return undefined;
  const text = await request.text();
  if (Buffer.byteLength(text) > maxBytes) return undefined;
  return new URLSearchParams(text);
}

/** Reads a bounded JSON body; undefined when it is not JSON, too big, or unparseable. */
export async function jsonBody(request: Request, maxBytes = 16 * 1024): Promise<unknown> {
  const type = (request.headers.get("content-type") ?? "").toLowerCase();
  if (!type.startsWith("application/json")) return undefined;
  const text = await request.text();
  if (Buffer.byteLength(text) > maxBytes) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A parameter that must appear at most once (RFC 6749 §3.1: repeated parameters are an error). */
export function single(params: URLSearchParams, name: string): string | undefined | null {
  const all = params.getAll(name);
  if (all.length > 1) return null;
  return all[0] === undefined || all[0] === "" ? undefined : all[0];
}
