/**
 * `private_key_jwt` client authentication at the gateway's token and revocation endpoints: the
 * client signs a short-lived JWT (RFC 7523 §2.2) with a key whose public half it registered as
 * `jwks` (RFC 7591 §2), and sends it as `client_assertion`.
 *
 * Checks: signature with one of the client's keys and an asymmetric algorithm; `iss` = `sub` =
 * the client id; `aud` names this server (its token endpoint, its issuer or a route's issuer);
 * `exp` present and at most {@link MAX_ASSERTION_LIFETIME_SECONDS} ahead; `jti` present and used
 * once (remembered in the store until the assertion expires, so every instance sees it).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2 Using JWTs for client authentication
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-3 JWT format and processing requirements
 * @see https://openid.net/specs/openid-connect-core-1_0.html#ClientAuthentication
 */
import { createLocalJWKSet, decodeJwt, errors, jwtVerify, type JSONWebKeySet } from "jose";
import type { GatewayServices } from "../pipeline/services.js";
import { sha256 } from "./http.js";

export const CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** Signature algorithms a client assertion may use (asymmetric only: the gateway holds no shared key). */
export const ACCEPTED_ASSERTION_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];

/** An assertion may not be valid for longer than this (it bounds how long its `jti` is kept). */
export const MAX_ASSERTION_LIFETIME_SECONDS = 600;
const CLOCK_TOLERANCE_SECONDS = 30;
const USED_JTIS = "as-assertion-jtis";

/** Checks a client's registered `jwks`: 1–10 public RSA, EC or OKP keys. Returns a reason or undefined. */
export function jwksProblem(jwks: unknown): string | undefined {
  if (typeof jwks !== "object" || jwks === null || Array.isArray(jwks)) return "jwks must be a JSON Web Key Set object";
  const keys = (jwks as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > 10) return "jwks.keys must list 1 to 10 keys";
  for (const k of keys) {
    if (typeof k !== "object" || k === null) return "every key in jwks must be an object";
    const key = k as Record<string, unknown>;
    if (key.kty !== "RSA" && key.kty !== "EC" && key.kty !== "OKP") return "jwks keys must be RSA, EC or OKP public keys";
    if ("d" in key || "p" in key || "q" in key || "k" in key) return "jwks must hold public keys only (a private key was sent)";
    if (key.use !== undefined && key.use !== "sig") return "jwks keys must be signing keys (use sig)";
  }
  if (JSON.stringify(jwks).length > 20_000) return "jwks is too large";
  return undefined;
}

/** The client id a `client_assertion` claims to be from (`iss`), without verifying it. */
export function assertionClientId(assertion: string): string | undefined {
  try {
    const iss = decodeJwt(assertion).iss;
    return typeof iss === "string" && iss.length > 0 && iss.length <= 2000 ? iss : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Verifies a client assertion for `clientId` against its registered keys. Resolves to undefined
 * when it is good, else to a reason for the `invalid_client` answer (never the assertion itself).
 */
export async function verifyClientAssertion(
  services: GatewayServices,
  clientId: string,
  jwks: JSONWebKeySet,
  assertion: string,
  audiences: string[],
): Promise<string | undefined> {
  let payload;
  try {
    ({ payload } = await jwtVerify(assertion, createLocalJWKSet(jwks), {
      algorithms: ACCEPTED_ASSERTION_ALGS,
      issuer: clientId,
      subject: clientId,
      audience: audiences,
      requiredClaims: ["exp", "jti"],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      currentDate: new Date(services.now()),
    }));
  } catch (err) {
    if (err instanceof errors.JWTExpired) return "The client assertion has expired.";
    if (err instanceof errors.JWTClaimValidationFailed) return `The client assertion's ${err.claim} claim is not acceptable.`;
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWSSignatureVerificationFailed) {
      return "The client assertion is not signed with a registered key.";
    }
    if (err instanceof errors.JOSEAlgNotAllowed) return `The client assertion must be signed with one of ${ACCEPTED_ASSERTION_ALGS.join(", ")}.`;
    return "The client assertion is not a valid signed JWT.";
  }
  const nowSeconds = Math.floor(services.now() / 1000);
  const exp = payload.exp!;
  if (exp - nowSeconds > MAX_ASSERTION_LIFETIME_SECONDS) {
    return `The client assertion must expire within ${MAX_ASSERTION_LIFETIME_SECONDS} seconds.`;
  }
  if (typeof payload.jti !== "string" || payload.jti.length === 0 || payload.jti.length > 200) return "The client assertion needs a jti.";
  if (!(await useOnce(services, USED_JTIS, `${clientId}\n${payload.jti}`, exp, CLOCK_TOLERANCE_SECONDS))) return "The client assertion was already used.";
  return undefined;
}

/**
 * Records that the assertion identified by `id` (issuer or client, and `jti`) was used, in the
 * shared store under its SHA-256, until it expires (`exp` + `skewSeconds`). False when it was
 * already recorded: a replay, on this instance or another.
 */
export async function useOnce(services: GatewayServices, ns: string, id: string, exp: number, skewSeconds: number): Promise<boolean> {
  const ttlSeconds = Math.max(1, Math.ceil(exp + skewSeconds - services.now() / 1000));
  return (await services.store.put(ns, sha256(id), 1, { ttlSeconds, ifVersion: 0 })) !== undefined;
}
