/**
 * Binding of MCP session ids to the authenticated caller.
 *
 * On routes where the gateway authenticated the caller, the client never sees the upstream's
 * `Mcp-Session-Id` as is: it gets `<upstream id>.<tag>`, where the tag is an HMAC over the
 * route, the caller's `sub` and the upstream id. A request naming a session must carry the tag
 * computed for its own caller and route, so a session id learned by another user is useless.
 * The scheme is stateless: any gateway instance with the same encryption key accepts the ids.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices#session-hijacking
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";

/** HKDF label of the binding key (changing it ends every bound session). */
export const SESSION_BINDING_LABEL = "tollgate mcp-session-binding v1";
/** Length of the tag: 22 base64url characters, 132 bits of the HMAC-SHA256 output. */
export const SESSION_TAG_LENGTH = 22;

/** Binds and checks client-facing session ids for one key. */
export interface SessionBinder {
  /** The client-facing id for the upstream id `raw`: `raw.<tag>`. */
  bind(raw: string, routeId: string, sub: string): string;
  /** The upstream id inside `bound` when its tag belongs to this caller and route; undefined otherwise. */
  unbind(bound: string, routeId: string, sub: string): string | undefined;
}

/** Creates a binder over `key` (a subkey derived for this purpose, never the encryption key itself). */
export function createSessionBinder(key: Buffer): SessionBinder {
  const tag = (raw: string, routeId: string, sub: string): string =>
    // Length-prefixed fields: no choice of route id or subject can imitate another pair.
    createHmac("sha256", key)
      .update(`${routeId.length}:${routeId}${sub.length}:${sub}${raw}`)
      .digest("base64url")
      .slice(0, SESSION_TAG_LENGTH);
  return {
    bind(raw, routeId, sub) {
      return `${raw}.${tag(raw, routeId, sub)}`;
    },
    unbind(bound, routeId, sub) {
      const dot = bound.lastIndexOf(".");
      if (dot <= 0 || bound.length - dot - 1 !== SESSION_TAG_LENGTH) return undefined;
      const raw = bound.slice(0, dot);
      const expected = Buffer.from(tag(raw, routeId, sub), "latin1");
      const given = Buffer.from(bound.slice(dot + 1), "latin1");
      return given.length === expected.length && timingSafeEqual(given, expected) ? raw : undefined;
    },
  };
}
