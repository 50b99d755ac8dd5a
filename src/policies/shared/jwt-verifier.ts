/**
 * Bearer JWT verification against a provider's JWKS, with a per-token cache so a client that
 * repeats the same token pays for the signature check once.
 *
 * Keys come from jose's remote JWK set: cached, refetched when a token names an unknown `kid`
 * (key rotation) but at most once per cooldown, so unknown-kid floods cannot hammer the IdP.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7519#section-7.2 Validating a JWT
 * @see https://www.rfc-editor.org/rfc/rfc8725 JSON Web Token Best Current Practices
 * @see https://www.rfc-editor.org/rfc/rfc9068 JWT Profile for OAuth 2.0 Access Tokens
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from "jose";
import type { UserInfo } from "../../pipeline/types.js";
import { TtlLru } from "./lru.js";

/** Asymmetric signature algorithms only: never `none`, never HMAC with a shared secret. */
export const ASYMMETRIC_ALGORITHMS = [
  "RS256", "RS384", "RS512",
  "PS256", "PS384", "PS512",
  "ES256", "ES384", "ES512",
  "EdDSA", "Ed25519",
];

export interface JwtVerifierOptions {
  issuer: string;
  /** Accepted `aud` value(s); undefined skips the audience check. */
  audience?: string | string[] | undefined;
  jwkUrl: string;
  /** Claim used as `user.sub` (default `sub`). */
  subPropertyName?: string | undefined;
  /** Allowed clock skew for `exp`/`nbf`/`iat`, seconds (default 30): `iat` and `nbf` beyond now + skew are refused. */
  clockToleranceSeconds?: number;
  /** Minimum time between JWKS refetches triggered by unknown key ids, ms (default 30 000). */
  jwksCooldownMs?: number;
  /** How long fetched keys are trusted before a refetch, ms (default 10 minutes). */
  jwksMaxAgeMs?: number;
  /** Time limit for one JWKS fetch, ms (default 5 000). */
  jwksTimeoutMs?: number;
  /** Verified tokens remembered (default 10 000). */
  cacheSize?: number;
  /** Longest a verification is reused, ms (default 5 minutes; never beyond `exp`). */
  cacheMaxMs?: number;
  now: () => number;
}

/** How many trailing characters of a token key the verification cache. */
const CACHE_KEY_CHARS = 32;

export type VerifyResult =
  | { ok: true; user: UserInfo }
  /** `invalid`: the token is bad (401). `unavailable`: the keys could not be fetched (503). */
  | { ok: false; reason: "invalid" | "unavailable"; code: string };

export interface JwtVerifier {
  /** A still-valid cached verification of exactly this token, without any async work. */
  cached(token: string): UserInfo | undefined;
  /** Full verification (and caching on success). Never throws. */
  verify(token: string): Promise<VerifyResult>;
  readonly cacheSize: number;
}

/** Creates a verifier; nothing is fetched until the first token arrives. */
export function createJwtVerifier(opts: JwtVerifierOptions): JwtVerifier {
  const jwks = createRemoteJWKSet(new URL(opts.jwkUrl), {
    cooldownDuration: opts.jwksCooldownMs ?? 30_000,
    cacheMaxAge: opts.jwksMaxAgeMs ?? 600_000,
    timeoutDuration: opts.jwksTimeoutMs ?? 5_000,
  });
  const cache = new TtlLru<{ token: string; sub: string; claims: JWTPayload }>(opts.cacheSize ?? 10_000);
  const cacheMaxMs = opts.cacheMaxMs ?? 300_000;
  const subClaim = opts.subPropertyName ?? "sub";
  const clockTolerance = opts.clockToleranceSeconds ?? 30;
  // Keyed by the token's last characters — the end of its signature, unique per token — and a hit
  // must be the very same token. Hashing a whole ~800-character token that arrives as a fresh
  // string on every request (as a Map key, or with SHA-256) costs 1.5–2.5 µs; a 32-character
  // key and one string comparison about 0.3 µs. Only verified tokens are stored, so a crafted
  // token can at worst share a key with another one and take its place (a cache miss later).
  const keyOf = (token: string) => (token.length > CACHE_KEY_CHARS ? token.slice(-CACHE_KEY_CHARS) : token);
  // Each request gets its own user object (and a shallow copy of the claims), so code that
  // edits `request.user` cannot change what the next request with the same token sees.
  const toUser = (e: { sub: string; claims: JWTPayload }): UserInfo => ({ sub: e.sub, data: { ...e.claims } });

  return {
    cached(token) {
      const e = cache.get(keyOf(token), opts.now());
      return e !== undefined && e.token === token ? toUser(e) : undefined;
    },
    async verify(token) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, jwks, {
          issuer: opts.issuer,
          audience: opts.audience,
          algorithms: ASYMMETRIC_ALGORITHMS,
          clockTolerance,
          currentDate: new Date(opts.now()),
          requiredClaims: ["exp"],
        }));
      } catch (err) {
        return classify(err);
      }
      // jose checks `iat` only against a maximum token age; a token issued in the future means a
      // wrong clock at the issuer or a forged timeline, and RFC 7519 §4.1.6 makes it "issued at".
      if (typeof payload.iat === "number" && payload.iat > opts.now() / 1000 + clockTolerance) {
        return { ok: false, reason: "invalid", code: "ERR_JWT_IAT_IN_FUTURE" };
      }
      const rawSub = payload[subClaim];
      if (typeof rawSub !== "string" && typeof rawSub !== "number") {
        return { ok: false, reason: "invalid", code: "ERR_MISSING_SUBJECT" };
      }
      const entry = { token, sub: String(rawSub), claims: payload };
      const now = opts.now();
      const until = Math.min(now + cacheMaxMs, (payload.exp ?? 0) * 1000);
      if (until > now) cache.set(keyOf(token), entry, until);
      return { ok: true, user: toUser(entry) };
    },
    get cacheSize() {
      return cache.size;
    },
  };
}

/**
 * True when jose failed because the keys could not be had (JWKS timeout, invalid or non-200
 * answer, network failure) — the issuer's problem, not the token's.
 */
export function keysUnavailable(err: unknown): boolean {
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return true;
  // The generic class is what jose throws for a JWKS endpoint answering non-200 or non-JSON.
  if (err instanceof errors.JOSEError) return err.code === errors.JOSEError.code;
  // Network failures (fetch TypeError) and anything unexpected: not the caller's fault.
  return true;
}

function classify(err: unknown): VerifyResult {
  const code = err instanceof errors.JOSEError ? err.code : "ERR_JWKS_FETCH";
  return { ok: false, reason: keysUnavailable(err) ? "unavailable" : "invalid", code };
}
