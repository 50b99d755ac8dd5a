/**
 * Which gateway user last connected an upstream from this browser, per upstream authorization
 * server — so that a connection started by someone else asks the upstream for a fresh login
 * instead of riding on the session the previous user left at the upstream.
 *
 * The memory is one cookie the gateway signs (HMAC-SHA256 with a key derived from the
 * encryption key). It holds no personal data: per authorization server (a truncated hash of its
 * issuer) a keyed hash of the gateway subject, which nobody without the gateway's key can link
 * to a user name, for at most {@link MAX_ENTRIES} servers. It is written when a connection
 * succeeds (only then is it certain that the upstream's session is that user's), lasts 400 days
 * (the longest browsers keep a cookie), and survives signing out of the gateway — that is the
 * point: the next user of the browser is a different one.
 *
 * Keyed by authorization server rather than by upstream: two upstreams behind one server share
 * its session, so connecting one as B and then the other as A must ask again.
 */
import { createHash, createHmac } from "node:crypto";
import type { GatewayServices } from "../../pipeline/services.js";
import { cookieHeader, readCookie, safeEqual } from "../session.js";

/** Authorization servers remembered per browser (the oldest is forgotten first). */
export const MAX_ENTRIES = 12;
const MAX_AGE_SECONDS = 400 * 86_400;

/** How the user starting a connection relates to the last one who connected from this browser. */
export type LastConnector = "same" | "different" | "unknown";

const cookieName = (services: GatewayServices) =>
  services.settings.publicUrl.startsWith("https:") ? "__Host-tollgate_upstream_users" : "tollgate_upstream_users";

const issuerKey = (issuer: string) => createHash("sha256").update(`issuer|${issuer}`).digest("base64url").slice(0, 12);

function keys(services: GatewayServices): { mac: Buffer; subject: Buffer } {
  return { mac: services.secrets.deriveKey("upstream-users-cookie/mac"), subject: services.secrets.deriveKey("upstream-users-cookie/subject") };
}

const subjectHash = (key: Buffer, sub: string) => createHmac("sha256", key).update(sub).digest("base64url").slice(0, 22);
const mac = (key: Buffer, payload: string) => createHmac("sha256", key).update(`tollgate-upstream-users|${payload}`).digest("base64url").slice(0, 32);

const ENTRY_RE = /^[A-Za-z0-9_-]{12}:[A-Za-z0-9_-]{22}$/;

/** The cookie's entries, oldest first; empty when it is missing, malformed or not signed by this gateway's key. */
function entries(request: Request, services: GatewayServices): Array<[string, string]> {
  const raw = readCookie(request, cookieName(services));
  if (!raw || raw.length > 1024) return [];
  const dot = raw.lastIndexOf(".");
  if (dot <= 0) return [];
  const payload = raw.slice(0, dot);
  if (!safeEqual(raw.slice(dot + 1), mac(keys(services).mac, payload))) return [];
  const out: Array<[string, string]> = [];
  for (const e of payload.split("~")) {
    if (!ENTRY_RE.test(e)) return [];
    out.push([e.slice(0, 12), e.slice(13)]);
  }
  return out;
}

/** Whether `sub` is the user who last connected an upstream of `issuer` from this browser. */
export function lastConnector(request: Request, services: GatewayServices, issuer: string, sub: string): LastConnector {
  const found = entries(request, services).find(([k]) => k === issuerKey(issuer));
  if (!found) return "unknown";
  return safeEqual(found[1], subjectHash(keys(services).subject, sub)) ? "same" : "different";
}

/** The Set-Cookie value recording that `sub` connected an upstream of `issuer` from this browser. */
export function rememberConnector(request: Request, services: GatewayServices, issuer: string, sub: string): string {
  const k = keys(services);
  const key = issuerKey(issuer);
  const kept = entries(request, services).filter(([i]) => i !== key);
  kept.push([key, subjectHash(k.subject, sub)]);
  const payload = kept
    .slice(-MAX_ENTRIES)
    .map(([i, h]) => `${i}:${h}`)
    .join("~");
  return cookieHeader(services.settings, cookieName(services), `${payload}.${mac(k.mac, payload)}`, { maxAge: MAX_AGE_SECONDS });
}
