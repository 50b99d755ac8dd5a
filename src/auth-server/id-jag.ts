/**
 * Cross-app access, inbound: the gateway's token endpoint accepts an Identity Assertion JWT
 * Authorization Grant (ID-JAG) from a trusted issuer with the RFC 7523 JWT bearer grant, and
 * issues its own route-bound access token — the organisation's IdP, not a consent page, decides
 * that this client may act for this user.
 *
 * Checks, in order: the issuer is a trusted one (its `iss` is looked up before any key is
 * fetched); signature against that issuer's JWKS (asymmetric algorithms only); header `typ`
 * `oauth-id-jag+jwt`; `aud` = the route's issuer identifier (`G{R}`, which is also the
 * resource); `exp`, `iat` (not in the future) with 30 s of clock skew; `sub`, `jti`,
 * `client_id` present; `client_id` = the authenticated client; `expectedClientIds`; the
 * `authorization_details` types. The token endpoint then checks `resource` and `scope` and,
 * last, that the `jti` was never used before ({@link IdJagVerifier.consume}).
 *
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-identity-assertion-authz-grant/
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-3 JWT bearer grant processing
 * @see https://www.rfc-editor.org/rfc/rfc9396 Rich authorization requests (`authorization_details`)
 */
import { createRemoteJWKSet, customFetch, decodeJwt, errors, jwtVerify, type JWTPayload } from "jose";
import type { GatewayServices } from "../pipeline/services.js";
import type { UserInfo } from "../pipeline/types.js";
import { createGuardedFetch, isNonPublicTarget } from "../oauth/ssrf.js";
import { ASYMMETRIC_ALGORITHMS, keysUnavailable } from "../policies/shared/jwt-verifier.js";
import { DEFAULT_CLAIMS } from "../web/login/idp.js";
import { useOnce } from "./client-assertion.js";

/** The JWT bearer grant type (RFC 7523 §2.1). */
export const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/** The `typ` header of an ID-JAG. */
export const ID_JAG_TYP = "oauth-id-jag+jwt";
/** Store namespace of the `jti`s of accepted ID-JAGs (replay protection; key: SHA-256 of issuer and jti). */
export const ID_JAG_JTI_NS = "as-id-jag-jti";
/** Allowed clock skew for `exp` and `iat`, seconds. */
export const CLOCK_SKEW_SECONDS = 30;

/** How the gateway's subject id is made from an ID-JAG: see {@link subjectIdOf}. */
export type SubjectMapping = "iss_prefix" | "iss_tenant_prefix" | "sub_id_only";

/** `idJag` of an MCP OAuth policy, as validated. */
export type InboundIdJagOptions =
  | { enabled: false }
  | {
      enabled: true;
      trustedIssuers?: Array<{ issuer?: string | undefined; jwksUrl?: string | undefined; expectedClientIds?: string[] | undefined; subjectMapping: SubjectMapping }> | undefined;
      authorizationDetailsTypesAllowed?: string[] | undefined;
    };

/** One trusted issuer with its issuer and JWKS resolved. */
export interface TrustedIssuer {
  issuer: string;
  jwksUrl: string;
  expectedClientIds: string[] | undefined;
  subjectMapping: SubjectMapping;
}

/** A refusal: the OAuth error, its safe description, the HTTP status and a reason code for the log. */
export interface IdJagRefusal {
  ok: false;
  error: "invalid_grant" | "unauthorized_client" | "invalid_authorization_details" | "temporarily_unavailable";
  description: string;
  status: number;
  reason: string;
}

/** An accepted ID-JAG. */
export interface AcceptedIdJag {
  ok: true;
  issuer: string;
  claims: JWTPayload;
  /** The identity the gateway's token carries (`sub` = the mapped subject id). */
  user: UserInfo;
}

/** The ID-JAG verifier of one MCP OAuth policy. */
export interface IdJagVerifier {
  readonly issuers: readonly TrustedIssuer[];
  /** Verifies `assertion` for a token request of `clientId` to the route whose issuer is `audience`. Never throws. */
  verify(assertion: string, expected: { clientId: string; audience: string }): Promise<AcceptedIdJag | IdJagRefusal>;
  /**
   * Marks a verified ID-JAG used (its issuer and `jti`, until it expires), right before a token
   * is issued for it; false when it was used before (a replay).
   */
  consume(accepted: AcceptedIdJag): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Resolves `trustedIssuers` (default: one entry for the browser-login IdP, `iss_prefix`); an
 * entry without `issuer`/`jwksUrl` means the browser-login IdP. Throws (a start-up error) when
 * there is no IdP to default to, or one issuer is listed twice.
 */
export function resolveTrustedIssuers(
  options: Extract<InboundIdJagOptions, { enabled: true }>,
  idp: { issuer: string; jwksUrl: string } | undefined,
): TrustedIssuer[] {
  const entries = options.trustedIssuers ?? [{ subjectMapping: "iss_prefix" as const }];
  const out: TrustedIssuer[] = [];
  entries.forEach((e, i) => {
    const source = e.issuer !== undefined && e.jwksUrl !== undefined ? { issuer: e.issuer, jwksUrl: e.jwksUrl } : idp;
    if (!source) {
      throw new Error(
        `idJag.trustedIssuers[${i}]: give issuer and jwksUrl; without them the entry means the browser login's identity provider (oidc), and this policy has none`,
      );
    }
    if (out.some((t) => t.issuer === source.issuer)) throw new Error(`idJag.trustedIssuers[${i}]: issuer ${source.issuer} is listed twice`);
    out.push({ ...source, expectedClientIds: e.expectedClientIds, subjectMapping: e.subjectMapping });
  });
  return out;
}

/**
 * The gateway's subject id for an ID-JAG's user:
 * - `iss_prefix`: `<iss>#<sub>` — users of different issuers never meet;
 * - `iss_tenant_prefix`: `<iss>#<tenant>#<sub>` with the `tenant` claim percent-encoded (an
 *   assertion without `tenant` is refused) — for multi-tenant issuers;
 * - `sub_id_only`: `<sub>` — the same subject as the browser login gives the user, so their
 *   upstream connections are shared (only for the browser-login IdP, or issuers whose `sub`
 *   values cannot collide with it).
 * An issuer identifier has no `#` (RFC 8414 §2), so the id always splits back unambiguously.
 */
export function subjectIdOf(mapping: SubjectMapping, claims: { iss: string; sub: string; tenant?: unknown }): string | undefined {
  switch (mapping) {
    case "sub_id_only":
      return claims.sub;
    case "iss_tenant_prefix":
      if (typeof claims.tenant !== "string" || claims.tenant === "") return undefined;
      return `${claims.iss}#${encodeURIComponent(claims.tenant)}#${claims.sub}`;
    default:
      return `${claims.iss}#${claims.sub}`;
  }
}

const refuse = (error: IdJagRefusal["error"], description: string, reason: string, status = 400): IdJagRefusal => ({
  ok: false,
  error,
  description,
  status,
  reason,
});
const INVALID = (reason: string) => refuse("invalid_grant", "The identity assertion is invalid.", reason);

/** Why jose refused a token, as a refusal (keys unavailable → 503, anything else → invalid_grant). */
function classify(err: unknown): IdJagRefusal {
  if (err instanceof errors.JWTExpired) return refuse("invalid_grant", "The identity assertion has expired.", "expired");
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "aud") return refuse("invalid_grant", "The identity assertion is for another audience.", "wrong_audience");
    return INVALID(`claim_${err.claim}`);
  }
  if (keysUnavailable(err)) return refuse("temporarily_unavailable", "The issuer's keys could not be fetched; try again later.", "jwks_unavailable", 503);
  return INVALID((err as errors.JOSEError).code);
}

/** The `type`s of an `authorization_details` claim, or undefined when the claim is malformed. */
function detailTypes(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const types: string[] = [];
  for (const d of value) {
    if (typeof d !== "object" || d === null || typeof (d as { type?: unknown }).type !== "string") return undefined;
    types.push((d as { type: string }).type);
  }
  return types;
}

/**
 * Builds the verifier of one policy. JWKS are fetched on first use through the gateway's
 * SSRF-guarded client (private addresses only when the configuration names them), cached, and
 * refetched at most every 30 s for an unknown `kid`.
 */
export async function createIdJagVerifier(
  services: GatewayServices,
  issuers: TrustedIssuer[],
  options: { authorizationDetailsTypesAllowed?: string[] | undefined; claims?: string[] | undefined },
): Promise<IdJagVerifier> {
  const urls = issuers.map((t) => new URL(t.jwksUrl));
  const fetch = createGuardedFetch({
    allowPrivate: (await Promise.all(urls.map((u) => isNonPublicTarget(u)))).some(Boolean),
    allowedHosts: [...services.settings.allowedUpstreamHosts.map((h) => h.toLowerCase()), ...urls.map((u) => u.hostname.toLowerCase())],
  });
  const jwksFetch = (url: string, o: { headers: Headers; signal: AbortSignal }) => fetch(url, { method: "GET", headers: o.headers, redirect: "manual", signal: o.signal });
  const keySets = new Map(
    issuers.map((t) => [t.issuer, createRemoteJWKSet(new URL(t.jwksUrl), { cooldownDuration: 30_000, timeoutDuration: 5_000, [customFetch]: jwksFetch })]),
  );
  const allowedTypes = new Set(options.authorizationDetailsTypesAllowed ?? []);
  const claimNames = options.claims ?? DEFAULT_CLAIMS;

  async function verify(assertion: string, expected: { clientId: string; audience: string }): Promise<AcceptedIdJag | IdJagRefusal> {
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(assertion);
    } catch {
      return INVALID("not_a_jwt");
    }
    const trusted = issuers.find((t) => t.issuer === unverified.iss);
    if (!trusted) return refuse("invalid_grant", "The identity assertion's issuer is not trusted.", "untrusted_issuer");
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(assertion, keySets.get(trusted.issuer)!, {
        issuer: trusted.issuer,
        audience: expected.audience,
        typ: ID_JAG_TYP,
        algorithms: ASYMMETRIC_ALGORITHMS,
        clockTolerance: CLOCK_SKEW_SECONDS,
        currentDate: new Date(services.now()),
        requiredClaims: ["exp", "iat", "sub", "jti", "client_id"],
      }));
    } catch (err) {
      return classify(err);
    }
    const nowSeconds = services.now() / 1000;
    if ((claims.iat as number) > nowSeconds + CLOCK_SKEW_SECONDS) return INVALID("iat_in_future");
    if (typeof claims.sub !== "string" || claims.sub === "" || typeof claims.jti !== "string" || claims.jti === "") return INVALID("claim_types");
    if (claims.client_id !== expected.clientId) {
      return refuse("invalid_grant", "The identity assertion was issued for another client.", "client_mismatch");
    }
    if (trusted.expectedClientIds && !trusted.expectedClientIds.includes(expected.clientId)) {
      return refuse("unauthorized_client", "This client may not use identity assertions from this issuer.", "client_not_expected");
    }
    if (claims.authorization_details !== undefined) {
      const types = detailTypes(claims.authorization_details);
      if (!types || types.some((t) => !allowedTypes.has(t))) {
        return refuse("invalid_authorization_details", "The identity assertion carries authorization_details this gateway does not accept.", "authorization_details");
      }
    }
    const sub = subjectIdOf(trusted.subjectMapping, { iss: trusted.issuer, sub: claims.sub, tenant: claims.tenant });
    if (sub === undefined) return INVALID("no_tenant");
    const data: Record<string, unknown> = {};
    for (const n of claimNames) if (claims[n] !== undefined) data[n] = claims[n];
    if (claims.authorization_details !== undefined) data.authorization_details = claims.authorization_details;
    return { ok: true, issuer: trusted.issuer, claims, user: { sub, data } };
  }

  async function consume(accepted: AcceptedIdJag): Promise<boolean> {
    // Remembered (hashed, with the issuer) until the assertion expires, in the shared store.
    return useOnce(services, ID_JAG_JTI_NS, `${accepted.issuer} ${String(accepted.claims.jti)}`, accepted.claims.exp as number, CLOCK_SKEW_SECONDS);
  }

  return { issuers, verify, consume, close: () => fetch.close() };
}
