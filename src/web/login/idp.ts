/**
 * Browser login with the organisation's OIDC IdP: authorization code + PKCE against the IdP,
 * id_token validated (oauth4webapi checks iss/aud/exp/nonce, jose checks the signature against
 * the IdP's JWKS), then a gateway browser session for the IdP subject. The IdP's tokens are
 * dropped right away (the ID token is kept, encrypted, only for cross-app access upstreams);
 * they never leave the gateway except to the IdP itself.
 *
 * Start: `GET <basePath>/login?return_to=…`; the IdP redirects back to
 * `<publicUrl><basePath>/oauth/callback` (the redirect URI to register at the IdP, as in Zuplo's
 * guides; `<basePath>/login/callback` is served too, for registrations made before).
 *
 * @see https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth
 * @see https://www.rfc-editor.org/rfc/rfc9207 Authorization response issuer identification
 */
import * as oauth from "oauth4webapi";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { createHash } from "node:crypto";
import type { GatewayServices } from "../../pipeline/services.js";
import type { UserInfo } from "../../pipeline/types.js";
import type { SystemRequestContext } from "../../routing/system-routes.js";
import { saveIdToken } from "../../oauth/id-jag/id-tokens.js";
import { gatewayPaths } from "../../routing/gateway-paths.js";
import { escapeHtml, htmlPage, redirect, type PageAccount } from "../html.js";
import {
  browserLoginConfig,
  cookieHeader,
  createBrowserSession,
  devLoginEnabled,
  loginClaims,
  noLoginPage,
  pageAccount,
  randomToken,
  readCookie,
  safeEqual,
  safeReturnTo,
  type BrowserLoginConfig,
} from "../session.js";

/** Store namespace of pending IdP logins. */
export const LOGIN_STATE_NS = "browser-login-states";
/** id_token claims copied into `user.data` unless the configuration names others. */
export const DEFAULT_CLAIMS = ["email", "email_verified", "name", "preferred_username", "groups", "roles"];

interface PendingLogin {
  verifier: string | undefined;
  nonce: string;
  returnTo: string;
}

const jwksCache = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

function jwks(url: string, timeoutMs: number) {
  let set = jwksCache.get(url);
  if (!set) {
    set = createRemoteJWKSet(new URL(url), { timeoutDuration: timeoutMs, cooldownDuration: 30_000 });
    jwksCache.set(url, set);
  }
  return set;
}

/** The gateway's redirect URI at the IdP. */
export function idpRedirectUri(services: GatewayServices): string {
  return `${services.settings.publicUrl}${gatewayPaths(services.settings.basePath).callback}`;
}

const isLoopbackHttp = (u: string) => /^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/i.test(u);

function asAndClient(cfg: BrowserLoginConfig): { as: oauth.AuthorizationServer; client: oauth.Client } {
  return {
    as: { issuer: cfg.issuer, authorization_endpoint: cfg.url, token_endpoint: cfg.tokenUrl, jwks_uri: cfg.jwksUrl },
    client: { client_id: cfg.clientId },
  };
}

const stateCookieName = (services: GatewayServices) =>
  services.settings.publicUrl.startsWith("https:") ? "__Secure-tollgate_login" : "tollgate_login";
// Scoped to the base path: the start (`…/login`) and both callback paths must see it.
const stateCookiePath = (services: GatewayServices) => services.settings.basePath || "/";
const stateKey = (state: string) => createHash("sha256").update(state).digest("base64url");

const signedOutCookieName = (services: GatewayServices) =>
  services.settings.publicUrl.startsWith("https:") ? "__Host-tollgate_signed_out" : "tollgate_signed_out";

/**
 * The marker a sign-out leaves in the browser (`set` true; 30 days) or its removal (after the
 * next sign-in): while it is there, sign-in at the IdP asks for a fresh login, so that the next
 * person at this browser is not signed straight back in as the previous one by the IdP's own
 * session. It holds no user data.
 */
export function signedOutCookie(services: GatewayServices, set: boolean): string {
  return cookieHeader(services.settings, signedOutCookieName(services), set ? "1" : "", { maxAge: set ? 30 * 86400 : 0 });
}

/**
 * The `prompt` of an IdP sign-in: the preset's or configuration's own `prompt` parameter if it
 * has one; after a sign-out in this browser, `reloginPrompt` (default `login`); else none.
 */
export function idpPrompt(cfg: BrowserLoginConfig, signedOutBefore: boolean): string | undefined {
  if (cfg.authorizationParams?.prompt !== undefined) return undefined; // set with the other fixed parameters
  if (!signedOutBefore) return undefined;
  return cfg.reloginPrompt === false ? undefined : (cfg.reloginPrompt ?? "login");
}

/** GET `<basePath>/login`: sends the browser to the IdP (or the dev login, or explains). */
export async function loginStart(request: Request, ctx: SystemRequestContext): Promise<Response> {
  const { services } = ctx;
  const returnTo = safeReturnTo(new URL(request.url).searchParams.get("return_to"), services);
  const cfg = browserLoginConfig(services);
  if (!cfg) {
    if (devLoginEnabled(services)) {
      return redirect(`${gatewayPaths(services.settings.basePath).devLogin}?return_to=${encodeURIComponent(returnTo)}`);
    }
    return noLoginPage();
  }
  const state = randomToken();
  const nonce = randomToken();
  const usePkce = cfg.pkce !== false;
  const verifier = usePkce ? oauth.generateRandomCodeVerifier() : undefined;
  const ttl = cfg.stateTtlSeconds ?? 900;
  const pending: PendingLogin = { verifier, nonce, returnTo };
  await services.store.put(LOGIN_STATE_NS, stateKey(state), pending, { ttlSeconds: ttl });

  const url = new URL(cfg.url);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", cfg.clientId);
  url.searchParams.set("redirect_uri", idpRedirectUri(services));
  url.searchParams.set("scope", cfg.scope ?? "openid profile email");
  url.searchParams.set("state", state);
  url.searchParams.set("nonce", nonce);
  if (verifier) {
    url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(verifier));
    url.searchParams.set("code_challenge_method", "S256");
  }
  if (cfg.audience) url.searchParams.set("audience", cfg.audience);
  for (const [k, v] of Object.entries(cfg.authorizationParams ?? {})) url.searchParams.set(k, v);
  const prompt = idpPrompt(cfg, readCookie(request, signedOutCookieName(services)) === "1");
  if (prompt) url.searchParams.set("prompt", prompt);
  // The state is also kept in a cookie of this browser: a callback arriving in another browser
  // (login CSRF: an attacker's code injected into a victim's browser) is refused.
  const cookie = cookieHeader(services.settings, stateCookieName(services), state, {
    maxAge: ttl,
    path: stateCookiePath(services),
  });
  return redirect(url.href, { headers: { "set-cookie": cookie } });
}

function failure(title: string, message: string, status: number, account: PageAccount | undefined): Response {
  return htmlPage(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`, { status, account });
}

/** Picks the configured claims from validated id_token claims. */
export function userFromClaims(claims: Record<string, unknown>, names: string[] = DEFAULT_CLAIMS): UserInfo {
  const data: Record<string, unknown> = {};
  for (const n of names) if (claims[n] !== undefined) data[n] = claims[n];
  return { sub: String(claims.sub), data };
}

/** GET `<basePath>/oauth/callback` (alias `<basePath>/login/callback`): the IdP's redirect back with a code. */
export async function loginCallback(request: Request, ctx: SystemRequestContext): Promise<Response> {
  const { services } = ctx;
  const cfg = browserLoginConfig(services);
  const account = () => pageAccount(request, services);
  if (!cfg) return failure("Sign-in is not available", "No identity provider is configured.", 404, await account());
  const url = new URL(request.url);
  const state = url.searchParams.get("state") ?? "";
  const rec = state ? await services.store.take<PendingLogin>(LOGIN_STATE_NS, stateKey(state)) : undefined;
  const clear = cookieHeader(services.settings, stateCookieName(services), "", {
    maxAge: 0,
    path: stateCookiePath(services),
  });
  const cookieState = readCookie(request, stateCookieName(services));
  if (!rec || !cookieState || !safeEqual(cookieState, state)) {
    return failure("Sign-in expired", "This sign-in attempt is unknown or expired. Please start again.", 400, await account());
  }
  const pending = rec.value;
  const { as, client } = asAndClient(cfg);
  const timeout = cfg.remoteTimeoutMs ?? 10_000;
  const insecure = isLoopbackHttp(cfg.tokenUrl);
  try {
    // The callback URL as the IdP saw it (public origin), for validation of the parameters.
    const params = oauth.validateAuthResponse(as, client, url.searchParams, state);
    const secret = cfg.clientSecret;
    const clientAuth = !secret ? oauth.None() : cfg.tokenEndpointAuthMethod === "client_secret_post" ? oauth.ClientSecretPost(secret) : oauth.ClientSecretBasic(secret);
    const exchange = () =>
      oauth.authorizationCodeGrantRequest(
        as,
        client,
        clientAuth,
        params,
        idpRedirectUri(services),
        pending.verifier ?? oauth.nopkce,
        { signal: AbortSignal.timeout(timeout), [oauth.allowInsecureRequests]: insecure },
      );
    const tracing = services.tracing;
    const response = await (tracing ? tracing.trace("idp.token", "client", { "oauth.grant_type": "authorization_code" }, exchange) : exchange());
    const result = await oauth.processAuthorizationCodeResponse(as, client, response, {
      expectedNonce: pending.nonce,
      requireIdToken: !cfg.idTokenOptional,
    });
    const keys = jwks(cfg.jwksUrl, timeout);
    const verify = (jwt: string, audience?: string) => jwtVerify(jwt, keys, { issuer: cfg.issuer, audience, clockTolerance: 30 });
    // Without an ID token (providers that return none) the access token is the identity: a JWT
    // from the same issuer and keys. It came straight from the token endpoint over the channel
    // the client secret authenticated.
    const { payload } = result.id_token ? await verify(result.id_token, cfg.clientId) : await verify(result.access_token);
    if (typeof payload.sub !== "string" || payload.sub.length === 0) throw new Error("the identity token has no sub");
    if (cfg.expectedAudience !== undefined && !hasAudience(payload.aud, cfg.expectedAudience)) {
      // oidc.audience: the ID token, or else the IdP's access token, must be meant for it.
      await verify(result.access_token, cfg.expectedAudience);
    }
    let claims = payload as Record<string, unknown>;
    if (cfg.userinfoUrl) claims = await withUserinfo(cfg, claims, result.access_token, timeout);
    const user = userFromClaims(claims, [...(cfg.claims ?? DEFAULT_CLAIMS), ...loginClaims(services)]);
    if (result.id_token && typeof payload.exp === "number") await saveIdToken(services, user.sub, result.id_token, payload.exp);
    const session = await createBrowserSession(request, services, user, { via: "idp", ttlSeconds: cfg.sessionTtlSeconds });
    const headers = new Headers();
    headers.append("set-cookie", session);
    headers.append("set-cookie", clear);
    if (readCookie(request, signedOutCookieName(services)) !== undefined) headers.append("set-cookie", signedOutCookie(services, false));
    return redirect(pending.returnTo, { status: 303, headers });
  } catch (err) {
    if (err instanceof oauth.AuthorizationResponseError) {
      const code = err.error.slice(0, 64);
      services.log.info({ idpError: code }, "identity provider refused sign-in");
      return failure("Sign-in was not completed", `The identity provider answered: ${code}.`, 403, await account());
    }
    services.log.warn({ err: errSummary(err) }, "browser login failed");
    return failure("Sign-in failed", "The identity provider's answer could not be verified. Please try again.", 502, await account());
  }
}

/** True when a JWT `aud` (a string or a list) names `audience`. */
function hasAudience(aud: unknown, audience: string): boolean {
  return aud === audience || (Array.isArray(aud) && aud.includes(audience));
}

/** Adds userinfo claims (never overriding the verified id_token's, and only for the same sub). */
async function withUserinfo(
  cfg: BrowserLoginConfig,
  claims: Record<string, unknown>,
  accessToken: string,
  timeout: number,
): Promise<Record<string, unknown>> {
  const res = await fetch(cfg.userinfoUrl!, {
    headers: { authorization: `Bearer ${accessToken}`, accept: "application/json" },
    signal: AbortSignal.timeout(timeout),
    redirect: "error",
  });
  if (!res.ok) throw new Error(`userinfo answered ${res.status}`);
  const info = (await res.json()) as Record<string, unknown>;
  if (info.sub !== claims.sub) throw new Error("userinfo sub differs from the id_token's");
  return { ...info, ...claims };
}

/** Error detail for logs without response bodies (which may carry tokens). */
function errSummary(err: unknown): Record<string, unknown> {
  if (err instanceof Error) return { name: err.name, message: err.message, code: (err as { code?: string }).code };
  return { message: String(err) };
}
