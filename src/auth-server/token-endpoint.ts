/**
 * The machine-facing endpoints: token (authorization_code, refresh_token, and the JWT bearer
 * grant with an ID-JAG where cross-app access is enabled), dynamic client registration and
 * revocation.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3 Access token request
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6 Refreshing an access token
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-identity-assertion-authz-grant/ §5
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3 Client registration endpoint
 * @see https://www.rfc-editor.org/rfc/rfc7009 Token revocation
 */
import { decodeJwt } from "jose";
import { authenticateClient, registerClient, scopeList, TOLERATED_SCOPES } from "./clients.js";
import { formBody, json, jsonBody, oauthError, single } from "./http.js";
import { JWT_BEARER_GRANT } from "./id-jag.js";
import type { AuthServer } from "./server.js";
import type { OAuthClient } from "./types.js";
import { issueForAssertion, issueForCode, pkceMatches, redeemCode, refresh, revokeToken } from "./tokens.js";
import { emitAudit } from "../audit/audit.js";
import { AuditEvents } from "../audit/events.js";

/**
 * What a `private_key_jwt` client assertion's `aud` may name: the token endpoint (RFC 7523
 * §3), the server's issuer, or the issuer of one of its routes (`G{R}`).
 */
function assertionAudiences(as: AuthServer): string[] {
  return [as.endpoint("token"), as.endpoint("revoke"), as.issuer, ...as.resourceConfigs().filter((rc) => !rc.route.path.includes("{")).map((rc) => `${as.issuer}${rc.route.path}`)];
}

/** POST `<basePath>/oauth/token`. */
export async function tokenEndpoint(as: AuthServer, request: Request): Promise<Response> {
  const { services } = as;
  const form = await formBody(request);
  if (!form) return oauthError("invalid_request", "Send an application/x-www-form-urlencoded body.");
  for (const name of ["grant_type", "code", "code_verifier", "redirect_uri", "refresh_token", "client_id", "assertion"]) {
    if (single(form, name) === null) return oauthError("invalid_request", `${name} is repeated.`);
  }
  const auth = await authenticateClient(request, form, services, as.config, assertionAudiences(as));
  if (!auth.ok) {
    const extra: Record<string, string> = auth.status === 401 ? { "www-authenticate": 'Basic realm="oauth"' } : {};
    return oauthError(auth.error, auth.description, auth.status, extra);
  }
  const client = auth.client;
  const grantType = form.get("grant_type");
  const resources = [...new Set(form.getAll("resource"))];
  if (resources.length > 1) return oauthError("invalid_target", "At most one resource is supported per token.");
  const resource = resources[0];

  if (grantType === "authorization_code") {
    const code = form.get("code");
    const verifier = form.get("code_verifier");
    if (!code || !verifier) return oauthError("invalid_request", "code and code_verifier are required.");
    const rec = await redeemCode(services, code);
    const invalid = () => oauthError("invalid_grant", "The authorization code is invalid, expired or already used.");
    if (!rec || rec.clientId !== client.clientId) return invalid();
    const redirectUri = form.get("redirect_uri") ?? undefined;
    if (redirectUri !== undefined ? redirectUri !== rec.redirectUri : rec.redirectUriGiven) {
      return oauthError("invalid_grant", "redirect_uri does not match the authorization request.");
    }
    if (!pkceMatches(verifier, rec.codeChallenge)) return oauthError("invalid_grant", "PKCE verification failed.");
    if (resource !== undefined && resource !== rec.resource) {
      return oauthError("invalid_target", "The resource differs from the authorization request's.");
    }
    const rc = as.resourceFor(rec.resource);
    if (!rc) return invalid();
    const tokens = await issueForCode(services, rec, rc, client.grantTypes.includes("refresh_token"));
    emitAudit(services, { event: AuditEvents.downstreamTokenIssued, grantType, clientId: client.clientId, clientName: client.clientName, subjectId: rec.user.sub, resource: rec.resource });
    return json(tokens);
  }

  if (grantType === "refresh_token") {
    if (!client.grantTypes.includes("refresh_token")) {
      return oauthError("unauthorized_client", "The client did not register the refresh_token grant.");
    }
    const token = form.get("refresh_token");
    if (!token) return oauthError("invalid_request", "refresh_token is required.");
    const scope = form.has("scope") ? scopeList(form.get("scope")) : undefined;
    const out = await refresh(services, token, client.clientId, { scope, resource }, (r) => as.resourceFor(r));
    if (!out.ok) return oauthError(out.error, out.description);
    emitAudit(as.services, { event: AuditEvents.downstreamTokenIssued, grantType, clientId: client.clientId, clientName: client.clientName });
    return json(out.tokens);
  }

  if (grantType === JWT_BEARER_GRANT && as.resourceConfigs().some((rc) => rc.idJag)) {
    return jwtBearerGrant(as, form, client, resource);
  }

  return oauthError("unsupported_grant_type", "Supported grant types: authorization_code, refresh_token.");
}

/** The `resource` claim of an assertion: undefined, or its values (RFC 8707 allows several). */
function resourceClaim(value: unknown): string[] | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value === "string") return [value];
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === "string")) return value as string[];
  return null;
}

/**
 * The JWT bearer grant with an ID-JAG (cross-app access, inbound). The route is the request's
 * `resource`, else the assertion's `resource` claim, else its audience; the grant must be
 * enabled there. Only confidential clients may use it: the assertion names its client, and
 * only an authenticated client makes that binding mean something. The assertion's scopes bound
 * the token's; no refresh token is issued.
 */
async function jwtBearerGrant(as: AuthServer, form: URLSearchParams, client: OAuthClient, requested: string | undefined): Promise<Response> {
  const { services } = as;
  const assertion = form.get("assertion");
  if (!assertion) return oauthError("invalid_request", "assertion is required.");
  let unverified: Record<string, unknown>;
  try {
    unverified = decodeJwt(assertion);
  } catch {
    return oauthError("invalid_grant", "The identity assertion is invalid.");
  }
  const claimed = resourceClaim(unverified.resource);
  if (claimed === null) return oauthError("invalid_grant", "The identity assertion is invalid.");
  const aud = Array.isArray(unverified.aud) && unverified.aud.length === 1 ? unverified.aud[0] : unverified.aud;
  const resource = requested ?? (claimed?.length === 1 ? claimed[0] : typeof aud === "string" ? aud : undefined);
  if (!resource) return oauthError("invalid_request", "resource is required.");
  const rc = as.resourceFor(resource);
  if (!rc) return oauthError("invalid_target", "The resource is not one this gateway protects.");
  if (!rc.idJag) return oauthError("unsupported_grant_type", "Identity assertions are not accepted for this resource.");
  if (client.tokenEndpointAuthMethod === "none") {
    return oauthError("unauthorized_client", "Only confidential clients (a client secret or private_key_jwt) may present identity assertions.");
  }
  const refused = (reason: string, error: string, description: string, status = 400) => {
    services.log.info({ clientId: client.clientId, resource, reason }, "identity assertion refused");
    return oauthError(error, description, status);
  };
  // The route's issuer identifier (its metadata's `issuer`) is the route URL, which is the resource.
  const v = await rc.idJag.verify(assertion, { clientId: client.clientId, audience: resource });
  if (!v.ok) return refused(v.reason, v.error, v.description, v.status);
  if (claimed && !claimed.includes(resource)) return refused("wrong_resource", "invalid_grant", "The identity assertion is for another resource.");

  const granted = typeof v.claims.scope === "string" ? scopeList(v.claims.scope) : undefined;
  const asked = form.has("scope") ? scopeList(form.get("scope")) : undefined;
  if (asked?.some((s) => !rc.scopesSupported.includes(s) && !TOLERATED_SCOPES.has(s))) {
    return refused("unknown_scope", "invalid_scope", "The requested scope is not supported for this resource.");
  }
  if (asked && granted && asked.some((s) => !granted.includes(s))) {
    return refused("scope_not_granted", "invalid_scope", "The requested scope exceeds what the identity assertion grants.");
  }
  if (asked && client.scope && asked.some((s) => !scopeList(client.scope).includes(s))) {
    return refused("scope_not_registered", "invalid_scope", "The requested scope exceeds what the client registered.");
  }
  const meaningful = (asked ?? granted ?? rc.scopesSupported).filter((s) => rc.scopesSupported.includes(s));
  if (!meaningful.length) return refused("no_scope", "invalid_scope", "The identity assertion grants no scope this resource supports.");
  if (!(await rc.idJag.consume(v))) return refused("replayed", "invalid_grant", "The identity assertion was already used.");

  const tokens = await issueForAssertion(services, { clientId: client.clientId, user: v.user, resource, scope: meaningful.join(" ") }, rc);
  emitAudit(services, {
    event: AuditEvents.downstreamTokenIssued,
    grantType: JWT_BEARER_GRANT,
    clientId: client.clientId,
    clientName: client.clientName,
    subjectId: v.user.sub,
    resource,
    assertionIssuer: v.issuer,
  });
  const details = v.claims.authorization_details;
  return json(details === undefined ? tokens : { ...tokens, authorization_details: details });
}

/** Registrations one address may make per hour (anonymous registration must not fill the store). */
export const REGISTRATIONS_PER_HOUR = 100;

/** POST `<basePath>/oauth/register` (RFC 7591). */
export async function registerEndpoint(as: AuthServer, request: Request, remoteAddress: string | undefined): Promise<Response> {
  const count = await as.services.store.incr("oauth-register-rate", remoteAddress ?? "unknown", 3600);
  if (count.value > REGISTRATIONS_PER_HOUR) {
    const retry = String(Math.max(1, Math.ceil((count.resetAt - as.services.now()) / 1000)));
    return oauthError("temporarily_unavailable", "Too many registrations from this address; try again later.", 429, { "retry-after": retry });
  }
  const body = await jsonBody(request);
  if (body === undefined) return oauthError("invalid_client_metadata", "Send a JSON object (application/json, at most 16 KiB).");
  const out = await registerClient(body, as.services, as.config, as.knownScopes());
  if (!out.ok) return oauthError(out.error, out.description);
  return json(out.body, 201);
}

/** POST `<basePath>/oauth/revoke` (RFC 7009): always 200 for a well-formed, authenticated request. */
export async function revokeEndpoint(as: AuthServer, request: Request): Promise<Response> {
  const form = await formBody(request);
  if (!form) return oauthError("invalid_request", "Send an application/x-www-form-urlencoded body.");
  const auth = await authenticateClient(request, form, as.services, as.config, assertionAudiences(as));
  if (!auth.ok) return oauthError(auth.error, auth.description, auth.status);
  const token = form.get("token");
  if (!token) return oauthError("invalid_request", "token is required.");
  await revokeToken(as.services, token, auth.client.clientId);
  return new Response(null, { status: 200, headers: { "cache-control": "no-store", "access-control-allow-origin": "*" } });
}
