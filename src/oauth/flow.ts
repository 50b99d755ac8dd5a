/**
 * The OAuth 2.1 client operations the gateway performs against an upstream authorization
 * server — authorization request with PKCE, callback validation, code exchange, refresh,
 * revocation — as thin wrappers over oauth4webapi, with its errors mapped to GatewayErrors.
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1
 * @see https://www.rfc-editor.org/rfc/rfc7636 PKCE
 * @see https://www.rfc-editor.org/rfc/rfc8707 Resource indicators
 * @see https://www.rfc-editor.org/rfc/rfc9207 Authorization server issuer identification
 * @see https://www.rfc-editor.org/rfc/rfc7009 Token revocation
 */
import * as oauth from "oauth4webapi";
import { GatewayError } from "../errors.js";
import type { GuardedFetch } from "./ssrf.js";
import { clientAuth, type ClientCredentials, type TokenEndpointAuthMethod } from "./client-auth.js";

export type { TokenEndpointAuthMethod };

/** A client identity at one authorization server. */
export interface ClientIdentity extends ClientCredentials {
  clientId: string;
}

/** Tokens as the gateway keeps them. `expiresAt` is ms since epoch. */
export interface TokenSet {
  accessToken: string;
  refreshToken: string | undefined;
  tokenType: string;
  expiresAt: number | undefined;
  /** Scopes the AS says it granted (undefined when it did not say). */
  scope: string | undefined;
}

/** Request options for oauth4webapi calls: the SSRF-guarded fetch, http only where the guard allows it. */
export function requestOptions(fetch: GuardedFetch, url: string | undefined, signal?: AbortSignal) {
  return {
    [oauth.customFetch]: (u: string, init: oauth.CustomFetchOptions<string, unknown>) =>
      fetch(u, { method: init.method, headers: init.headers, body: init.body as never, redirect: "manual", signal: init.signal }),
    [oauth.allowInsecureRequests]: url !== undefined && url.startsWith("http:"),
    ...(signal ? { signal } : {}),
  };
}

/** oauth4webapi client object for an identity. */
export function toClient(id: ClientIdentity): oauth.Client {
  return { client_id: id.clientId, token_endpoint_auth_method: id.tokenEndpointAuthMethod };
}

/** Fresh PKCE verifier, its S256 challenge, and a state value. */
export async function newPkce(): Promise<{ verifier: string; challenge: string; state: string }> {
  const verifier = oauth.generateRandomCodeVerifier();
  return { verifier, challenge: await oauth.calculatePKCECodeChallenge(verifier), state: oauth.generateRandomState() };
}

/** Builds the upstream authorization request URL. */
export function authorizationUrl(
  as: oauth.AuthorizationServer,
  client: ClientIdentity,
  p: { redirectUri: string; state: string; codeChallenge: string; resource: string; scope: string | undefined; prompt: string | undefined },
): URL {
  const url = new URL(as.authorization_endpoint!);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", client.clientId);
  url.searchParams.set("redirect_uri", p.redirectUri);
  url.searchParams.set("state", p.state);
  url.searchParams.set("code_challenge", p.codeChallenge);
  url.searchParams.set("code_challenge_method", "S256");
  url.searchParams.set("resource", p.resource);
  if (p.scope) url.searchParams.set("scope", p.scope);
  if (p.prompt) url.searchParams.set("prompt", p.prompt);
  return url;
}

/** An authorization response the user should see as a failure page (access denied etc.). */
export class AuthorizationDeniedError extends GatewayError {
  constructor(readonly oauthError: string, readonly description: string | undefined) {
    super("upstream_authorization_denied", 400, "The upstream authorization server did not grant access.", {
      details: { error: oauthError },
    });
  }
}

/**
 * Validates the callback parameters: `state` (compared to the stored value), RFC 9207 `iss`
 * (required when the AS advertises it, compared when present), error responses.
 */
export function validateCallback(
  as: oauth.AuthorizationServer,
  client: ClientIdentity,
  params: URLSearchParams,
  expectedState: string,
): URLSearchParams {
  try {
    return oauth.validateAuthResponse(as, toClient(client), params, expectedState);
  } catch (err) {
    if (err instanceof oauth.AuthorizationResponseError) throw new AuthorizationDeniedError(err.error, err.error_description);
    throw new GatewayError("upstream_callback_invalid", 400, "The authorization response failed validation.", { cause: err });
  }
}

function toTokenSet(r: oauth.TokenEndpointResponse, now: number, previousRefresh?: string): TokenSet {
  // The gateway presents upstream tokens as `Authorization: Bearer`; a sender-constrained (DPoP)
  // or other token type would be sent in a form its resource server must refuse.
  if (r.token_type.toLowerCase() !== "bearer") {
    throw new TokenEndpointError("other", "unsupported_token_type", new Error(`token_type ${r.token_type.slice(0, 40)} is not Bearer`));
  }
  return {
    accessToken: r.access_token,
    refreshToken: r.refresh_token ?? previousRefresh,
    tokenType: r.token_type,
    expiresAt: typeof r.expires_in === "number" ? now + r.expires_in * 1000 : undefined,
    scope: typeof r.scope === "string" ? r.scope : undefined,
  };
}

/** Token endpoint outcome classes the callers act on. */
export type TokenErrorKind = "invalid_grant" | "invalid_client" | "temporary" | "other";

/** A token endpoint failure, classified. */
export class TokenEndpointError extends GatewayError {
  constructor(
    readonly kind: TokenErrorKind,
    readonly oauthError: string | undefined,
    cause: unknown,
  ) {
    super(
      kind === "temporary" ? "upstream_token_endpoint_unavailable" : `upstream_${kind}`,
      502,
      kind === "temporary"
        ? "The upstream authorization server is unavailable; try again shortly."
        : "The upstream authorization server rejected the gateway's token request.",
      { cause, details: oauthError ? { error: oauthError } : undefined },
    );
  }
}

function classify(err: unknown): never {
  if (err instanceof TokenEndpointError) throw err;
  if (err instanceof oauth.ResponseBodyError) {
    const kind: TokenErrorKind =
      err.status >= 500 ? "temporary" : err.error === "invalid_grant" ? "invalid_grant" : err.error === "invalid_client" || err.error === "unauthorized_client" ? "invalid_client" : "other";
    throw new TokenEndpointError(kind, err.error, err);
  }
  if (err instanceof oauth.WWWAuthenticateChallengeError) throw new TokenEndpointError("invalid_client", "invalid_client", err);
  if (err instanceof oauth.UnsupportedOperationError && /token_type/.test(err.message)) {
    throw new TokenEndpointError("other", "unsupported_token_type", err);
  }
  if (err instanceof GatewayError) throw new TokenEndpointError("temporary", undefined, err);
  if (err instanceof oauth.OperationProcessingError) {
    const status = (err.cause as { status?: number } | undefined)?.status;
    throw new TokenEndpointError(status !== undefined && status >= 500 ? "temporary" : "other", undefined, err);
  }
  throw new TokenEndpointError("temporary", undefined, err);
}

async function guardStatus(res: Response): Promise<Response> {
  if (res.status >= 500) {
    // The status travels with the cause: an answered request is a known outcome (see grants.ts).
    throw new TokenEndpointError("temporary", undefined, Object.assign(new Error(`token endpoint answered ${res.status}`), { status: res.status }));
  }
  return res;
}

/** Exchanges an authorization code (validated callback params) for tokens, sending `resource`. */
export async function exchangeCode(
  fetch: GuardedFetch,
  as: oauth.AuthorizationServer,
  client: ClientIdentity,
  p: { params: URLSearchParams; redirectUri: string; verifier: string; resource: string; now: number },
): Promise<TokenSet> {
  try {
    const res = await oauth
      .authorizationCodeGrantRequest(as, toClient(client), clientAuth(client), p.params, p.redirectUri, p.verifier, {
        ...requestOptions(fetch, as.token_endpoint),
        additionalParameters: { resource: p.resource },
      })
      .then(guardStatus);
    const out = await oauth.processAuthorizationCodeResponse(as, toClient(client), res);
    return toTokenSet(out, p.now);
  } catch (err) {
    classify(err);
  }
}

/** Uses a refresh token (rotated tokens come back in `refreshToken`), sending `resource`. */
export async function refreshTokens(
  fetch: GuardedFetch,
  as: oauth.AuthorizationServer,
  client: ClientIdentity,
  p: { refreshToken: string; resource: string; now: number },
): Promise<TokenSet> {
  try {
    const res = await oauth
      .refreshTokenGrantRequest(as, toClient(client), clientAuth(client), p.refreshToken, {
        ...requestOptions(fetch, as.token_endpoint),
        additionalParameters: { resource: p.resource },
      })
      .then(guardStatus);
    const out = await oauth.processRefreshTokenResponse(as, toClient(client), res);
    return toTokenSet(out, p.now, p.refreshToken);
  } catch (err) {
    classify(err);
  }
}

/**
 * Revokes a token at the upstream (RFC 7009) when the AS has a revocation endpoint. Returns
 * false when revocation is unsupported; errors are swallowed by callers that only try.
 */
export async function revokeToken(
  fetch: GuardedFetch,
  as: oauth.AuthorizationServer,
  client: ClientIdentity,
  token: string,
  hint: "refresh_token" | "access_token",
): Promise<boolean> {
  if (!as.revocation_endpoint) return false;
  const res = await oauth.revocationRequest(as, toClient(client), clientAuth(client), token, {
    ...requestOptions(fetch, as.revocation_endpoint),
    additionalParameters: { token_type_hint: hint },
  });
  await oauth.processRevocationResponse(res);
  return true;
}

/** Registers a client dynamically (RFC 7591) and returns the identity to use. */
export async function registerClient(
  fetch: GuardedFetch,
  as: oauth.AuthorizationServer,
  metadata: Record<string, unknown>,
): Promise<ClientIdentity & { raw: Record<string, unknown> }> {
  let out: Record<string, unknown>;
  try {
    const res = await oauth.dynamicClientRegistrationRequest(as, metadata as never, requestOptions(fetch, as.registration_endpoint));
    const copy = res.clone();
    try {
      out = (await oauth.processDynamicClientRegistrationResponse(res)) as Record<string, unknown>;
    } catch (err) {
      // RFC 7591 §3.2.1 requires `client_secret_expires_at` with a secret, but servers in the wild
      // omit it; such an answer is otherwise complete, so accept it (treated as "never expires").
      const body = (await copy.json().catch(() => undefined)) as Record<string, unknown> | undefined;
      const lenient =
        err instanceof oauth.OperationProcessingError &&
        /client_secret_expires_at/.test(err.message) &&
        (copy.status === 201 || copy.status === 200) &&
        typeof body?.client_id === "string" &&
        body.client_secret_expires_at === undefined;
      if (!lenient) throw err;
      out = body;
    }
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw new GatewayError("upstream_registration_failed", 502, "Dynamic client registration at the upstream failed.", {
      cause: err,
      details: err instanceof oauth.ResponseBodyError ? { error: err.error } : undefined,
    });
  }
  const secret = typeof out.client_secret === "string" ? out.client_secret : undefined;
  const returned = typeof out.token_endpoint_auth_method === "string" ? out.token_endpoint_auth_method : undefined;
  const requested = metadata.token_endpoint_auth_method as TokenEndpointAuthMethod;
  let method = (returned ?? requested) as TokenEndpointAuthMethod;
  if (!["client_secret_basic", "client_secret_post", "none"].includes(method)) method = secret ? "client_secret_basic" : "none";
  if (method !== "none" && !secret) method = "none";
  return { clientId: String(out.client_id), clientSecret: secret, tokenEndpointAuthMethod: method, raw: out };
}
