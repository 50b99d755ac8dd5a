/**
 * The signed-in users' IdP ID tokens, kept for cross-app access: the browser login stores the
 * validated ID token (encrypted at rest, bound to its record) until it expires; an `id-jag`
 * upstream reads it to ask the IdP for an ID-JAG. Kept only when an `id-jag` upstream is
 * configured.
 *
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-identity-assertion-authz-grant/ §4.3
 */
import type { GatewayServices } from "../../pipeline/services.js";
import { openRecord, sealRecord } from "../../store/sealed.js";

/** Store namespace of the users' IdP ID tokens (key: the user's subject). */
export const ID_TOKEN_NS = "idp-id-tokens";

const wanted = new WeakSet<GatewayServices>();

/** Asks the browser login to keep users' ID tokens (an `id-jag` upstream is configured). */
export function keepIdTokens(services: GatewayServices): void {
  wanted.add(services);
}

/** Stores `idToken` of `sub` (expiring at `exp`, seconds since epoch) when cross-app access needs it. */
export async function saveIdToken(services: GatewayServices, sub: string, idToken: string, exp: number): Promise<void> {
  if (!wanted.has(services)) return;
  const ttlSeconds = Math.floor(exp - services.now() / 1000);
  if (ttlSeconds <= 0) return;
  await services.store.put(ID_TOKEN_NS, sub, sealRecord(services.secrets, ID_TOKEN_NS, sub, idToken, { exp }), { ttlSeconds });
}

/**
 * The stored ID token of `sub` if it is still valid for at least `marginSeconds`; undefined when
 * there is none, it expired, or it cannot be decrypted (the user signs in again).
 */
export async function readIdToken(services: GatewayServices, sub: string, marginSeconds = 5): Promise<string | undefined> {
  const rec = await services.store.get<{ exp: number; sealed: string }>(ID_TOKEN_NS, sub);
  if (!rec || rec.value.exp - marginSeconds <= services.now() / 1000) return undefined;
  try {
    return openRecord<string>(services.secrets, ID_TOKEN_NS, sub, rec.value);
  } catch {
    return undefined;
  }
}
