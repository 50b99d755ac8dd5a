/**
 * Codes and tokens of the gateway's authorization server.
 *
 * - Authorization codes: random, 60 s, single-use (`take`); a replayed code revokes the grant
 *   its first use created (RFC 6749 §4.1.2).
 * - Access tokens: opaque `tga_<grantId>.<random>`, short-lived, bound to one resource.
 * - Refresh tokens: opaque `tgr_<grantId>.<random>`, rotated on every use; presenting a spent
 *   one revokes the whole grant (OAuth 2.1 §4.3.1, refresh token reuse detection).
 * - Only SHA-256 hashes are stored, under `<grantId>:<hash>` so revoking a grant finds every
 *   token of it by prefix. Grant changes run under a store lock (one writer across instances).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.6 PKCE S256 verification
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1#section-4.3.1
 */
import { createHash } from "node:crypto";
import type { GatewayServices } from "../pipeline/services.js";
import { safeEqual } from "../web/session.js";
import { random, sha256 } from "./http.js";
import {
  CODE_TTL_SECONDS,
  NS,
  type AccessRecord,
  type CodeRecord,
  type GrantRecord,
  type RefreshRecord,
  type ResourceConfig,
} from "./types.js";
import { emitAudit } from "../audit/audit.js";
import { AuditEvents } from "../audit/events.js";

const TOKEN_RE = /^(tga|tgr)_([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

/** Splits an opaque token into its kind, grant id and storage key. */
export function parseToken(token: string): { kind: "access" | "refresh"; grantId: string; key: string } | undefined {
  const m = TOKEN_RE.exec(token);
  if (!m) return undefined;
  return { kind: m[1] === "tga" ? "access" : "refresh", grantId: m[2]!, key: `${m[2]}:${sha256(token)}` };
}

/** Checks an RFC 7636 code verifier against an S256 challenge. */
export function pkceMatches(verifier: string, challenge: string): boolean {
  if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) return false;
  return safeEqual(createHash("sha256").update(verifier).digest("base64url"), challenge);
}

/** Issues an authorization code for an approved request. Returns the code. */
export async function issueCode(
  services: GatewayServices,
  rec: Omit<CodeRecord, "expiresAt" | "grantId">,
): Promise<string> {
  const code = random(32);
  const value: CodeRecord = { ...rec, expiresAt: services.now() + CODE_TTL_SECONDS * 1000, grantId: random(16) };
  await services.store.put(NS.codes, sha256(code), value, { ttlSeconds: CODE_TTL_SECONDS });
  return code;
}

/**
 * Redeems a code (single use). A code seen before revokes the grant issued from it and reads
 * as unknown.
 */
export async function redeemCode(services: GatewayServices, code: string): Promise<CodeRecord | undefined> {
  const key = sha256(code);
  const rec = await services.store.take<CodeRecord>(NS.codes, key);
  if (!rec) {
    const used = await services.store.get<{ grantId: string }>(NS.usedCodes, key);
    if (used) {
      services.log.warn({ grantId: used.value.grantId }, "authorization code replayed; revoking the grant it issued");
      await revokeGrant(services, used.value.grantId);
    }
    return undefined;
  }
  await services.store.put(NS.usedCodes, key, { grantId: rec.value.grantId }, { ttlSeconds: 600 });
  if (rec.value.expiresAt <= services.now()) return undefined;
  return rec.value;
}

/** What the token endpoint answers. */
export interface TokenSet {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  scope: string;
  refresh_token?: string;
  /** The resource the token is bound to (RFC 8707), as Zuplo's gateway answers it. */
  resource: string;
}

async function mintPair(
  services: GatewayServices,
  grantId: string,
  grant: GrantRecord,
  rc: ResourceConfig,
  withRefresh: boolean,
  scope = grant.scope,
): Promise<TokenSet> {
  const now = services.now();
  const access = `tga_${grantId}.${random(32)}`;
  const ar: AccessRecord = {
    clientId: grant.clientId,
    user: grant.user,
    resource: grant.resource,
    scope,
    expiresAt: now + rc.accessTokenTtlSeconds * 1000,
  };
  await services.store.put(NS.access, parseToken(access)!.key, ar, { ttlSeconds: rc.accessTokenTtlSeconds });
  const out: TokenSet = { access_token: access, token_type: "Bearer", expires_in: rc.accessTokenTtlSeconds, scope, resource: grant.resource };
  if (withRefresh) {
    const refresh = `tgr_${grantId}.${random(32)}`;
    const rr: RefreshRecord = { clientId: grant.clientId, spent: false, expiresAt: now + rc.refreshTokenTtlSeconds * 1000 };
    await services.store.put(NS.refresh, parseToken(refresh)!.key, rr, { ttlSeconds: rc.refreshTokenTtlSeconds });
    out.refresh_token = refresh;
  }
  return out;
}

/** Stores a new grant (living `ttlSeconds`) and mints its first tokens. */
async function createGrant(
  services: GatewayServices,
  grantId: string,
  grant: GrantRecord,
  rc: ResourceConfig,
  ttlSeconds: number,
  withRefresh: boolean,
): Promise<TokenSet> {
  return services.store.withLock(`oauth-grant:${grantId}`, async () => {
    const v = await services.store.put(NS.grants, grantId, grant, { ttlSeconds, ifVersion: 0 });
    if (v === undefined) throw new Error("grant id collision");
    return mintPair(services, grantId, grant, rc, withRefresh);
  });
}

/** Creates the grant for a redeemed code and its first tokens. */
export async function issueForCode(
  services: GatewayServices,
  code: CodeRecord,
  rc: ResourceConfig,
  withRefresh: boolean,
): Promise<TokenSet> {
  const grant: GrantRecord = {
    clientId: code.clientId,
    user: code.user,
    resource: code.resource,
    scope: code.scope,
    createdAt: services.now(),
  };
  return createGrant(services, code.grantId, grant, rc, rc.refreshTokenTtlSeconds, withRefresh);
}

/**
 * Creates the grant for an accepted identity assertion (ID-JAG): an access token and no refresh
 * token — the client asks the IdP for a new assertion, so the IdP's policy is applied again.
 * The grant lives as long as its access token (revocable like any other).
 */
export async function issueForAssertion(
  services: GatewayServices,
  grant: Omit<GrantRecord, "createdAt">,
  rc: ResourceConfig,
): Promise<TokenSet> {
  return createGrant(services, random(16), { ...grant, createdAt: services.now() }, rc, rc.accessTokenTtlSeconds, false);
}

/** Outcome of a refresh: tokens, or an OAuth error code. */
export type RefreshOutcome = { ok: true; tokens: TokenSet; grant: GrantRecord } | { ok: false; error: string; description: string };

/**
 * Rotates a refresh token. `scope` (optional) narrows the new access token; `resource`
 * (optional) must be the grant's. A spent token revokes the grant.
 */
export async function refresh(
  services: GatewayServices,
  token: string,
  clientId: string,
  opts: { scope?: string[] | undefined; resource?: string | undefined },
  rcFor: (resource: string) => ResourceConfig | undefined,
): Promise<RefreshOutcome> {
  const invalid = { ok: false as const, error: "invalid_grant", description: "The refresh token is invalid, expired or revoked." };
  const parsed = parseToken(token);
  if (!parsed || parsed.kind !== "refresh") return invalid;
  return services.store.withLock(`oauth-grant:${parsed.grantId}`, async (): Promise<RefreshOutcome> => {
    const rec = await services.store.get<RefreshRecord>(NS.refresh, parsed.key);
    if (!rec || rec.value.expiresAt <= services.now()) return invalid;
    if (rec.value.clientId !== clientId) return invalid;
    if (rec.value.spent) {
      services.log.warn({ grantId: parsed.grantId, clientId }, "spent refresh token presented; revoking the grant");
      await revokeGrantLocked(services, parsed.grantId);
      return invalid;
    }
    const grantRec = await services.store.get<GrantRecord>(NS.grants, parsed.grantId);
    if (!grantRec) return invalid;
    const grant = grantRec.value;
    if (opts.resource !== undefined && opts.resource !== grant.resource) {
      return { ok: false, error: "invalid_target", description: "The resource differs from the one this grant is for." };
    }
    const granted = grant.scope.split(" ").filter(Boolean);
    if (opts.scope && opts.scope.some((s) => !granted.includes(s))) {
      return { ok: false, error: "invalid_scope", description: "A refresh cannot widen the granted scope." };
    }
    const rc = rcFor(grant.resource);
    if (!rc) return invalid;
    const marked = await services.store.put(NS.refresh, parsed.key, { ...rec.value, spent: true }, {
      ifVersion: rec.version,
      ttlSeconds: rc.refreshTokenTtlSeconds,
    });
    if (marked === undefined) {
      await revokeGrantLocked(services, parsed.grantId);
      return invalid;
    }
    await services.store.put(NS.grants, parsed.grantId, grant, { ttlSeconds: rc.refreshTokenTtlSeconds });
    const scope = opts.scope?.length ? opts.scope.join(" ") : grant.scope;
    return { ok: true, tokens: await mintPair(services, parsed.grantId, grant, rc, true, scope), grant };
  });
}

async function revokeGrantLocked(services: GatewayServices, grantId: string): Promise<void> {
  await services.store.delete(NS.grants, grantId);
  for (const ns of [NS.access, NS.refresh]) {
    for (const r of await services.store.list(ns, `${grantId}:`)) await services.store.delete(ns, r.key);
  }
}

/** Revokes a grant with every access and refresh token issued under it. */
export async function revokeGrant(services: GatewayServices, grantId: string): Promise<void> {
  await services.store.withLock(`oauth-grant:${grantId}`, () => revokeGrantLocked(services, grantId));
  emitAudit(services, { event: AuditEvents.downstreamTokenRevoked, grantId });
}

/**
 * RFC 7009 revocation of a token owned by `clientId`. Refresh tokens revoke their grant;
 * access tokens are deleted. Unknown tokens and other clients' tokens are ignored.
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 */
export async function revokeToken(services: GatewayServices, token: string, clientId: string): Promise<void> {
  const parsed = parseToken(token);
  if (!parsed) return;
  const ns = parsed.kind === "access" ? NS.access : NS.refresh;
  const rec = await services.store.get<{ clientId: string }>(ns, parsed.key);
  if (!rec || rec.value.clientId !== clientId) return;
  if (parsed.kind === "refresh") await revokeGrant(services, parsed.grantId);
  else await services.store.delete(NS.access, parsed.key);
}

/** Looks up a presented access token. */
export async function lookupAccessToken(
  services: GatewayServices,
  token: string,
): Promise<(AccessRecord & { grantId: string }) | undefined> {
  const parsed = parseToken(token);
  if (!parsed || parsed.kind !== "access") return undefined;
  const rec = await services.store.get<AccessRecord>(NS.access, parsed.key);
  if (!rec || rec.value.expiresAt <= services.now()) return undefined;
  return { ...rec.value, grantId: parsed.grantId };
}
