/**
 * Browser sessions: who is signed in to the gateway's own pages (consent, connect,
 * connections). A session is a random 256-bit id in an HttpOnly, SameSite=Lax cookie; the
 * record lives in the store (namespace `browser-sessions`, keyed by the SHA-256 of the id, so a
 * store dump does not reveal usable cookies) and expires with a TTL.
 *
 * Sign-in happens through the IdP browser login registered with {@link registerBrowserLogin}
 * (see `login/idp.ts`) or, on loopback with `settings.devLogin`, the dev login page.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6265#section-4.1 Set-Cookie
 * @see https://owasp.org/www-community/SameSite
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { GatewayServices, GatewaySettings } from "../pipeline/services.js";
import type { UserInfo } from "../pipeline/types.js";
import { gatewayPaths } from "../routing/gateway-paths.js";
import { escapeHtml, htmlPage, redirect, type PageAccount } from "./html.js";
import { registerWebRoutes } from "./index.js";

/** Store namespace of browser session records. */
export const SESSION_NS = "browser-sessions";
/** Session lifetime when the login configuration names none (8 hours). */
export const DEFAULT_SESSION_TTL_SECONDS = 8 * 3600;

/**
 * How the gateway signs browsers in with the organisation's OIDC IdP (the `browserLogin` block
 * of `mcp-oauth-inbound`, or of `open-id-jwt-auth-inbound`, completed with the IdP's issuer and
 * JWKS). The IdP's tokens are used only to learn who the user is and are then dropped.
 */
export interface BrowserLoginConfig {
  /** The IdP's issuer (checked against the id_token `iss`). */
  issuer: string;
  /** The IdP's JWKS (id_token signatures). */
  jwksUrl: string;
  /** The IdP's authorization endpoint. */
  url: string;
  /** The IdP's token endpoint. */
  tokenUrl: string;
  clientId: string;
  clientSecret?: string | undefined;
  /** Default `openid profile email`. */
  scope?: string | undefined;
  /** Sent as the `audience` authorization parameter (Auth0 APIs). */
  audience?: string | undefined;
  /** Use PKCE S256 with the IdP (default true). */
  pkce?: boolean | undefined;
  /** Client authentication at the token endpoint (default `client_secret_basic`). */
  tokenEndpointAuthMethod?: "client_secret_basic" | "client_secret_post" | undefined;
  /**
   * Expected `aud` of the IdP's tokens (`oidc.audience`): the ID token, or else the access
   * token the IdP returned (a JWT verified with the same issuer and keys), must carry it.
   */
  expectedAudience?: string | undefined;
  /**
   * Providers whose token endpoint returns no ID token (WorkOS User Management): the user is
   * read from the access token, a JWT verified with the issuer and keys.
   */
  idTokenOptional?: boolean | undefined;
  /** Fixed extra parameters of the authorization request (e.g. WorkOS `provider=authkit`). */
  authorizationParams?: Record<string, string> | undefined;
  /**
   * `prompt` of the first sign-in after a sign-out in the same browser (default `login`; Google,
   * which has no `login`, uses `select_account`; false sends none).
   */
  reloginPrompt?: string | false | undefined;
  /** Timeout for calls to the IdP, ms (default 10000). */
  remoteTimeoutMs?: number | undefined;
  /** Lifetime of a pending login (state, nonce, verifier), seconds (default 600). */
  stateTtlSeconds?: number | undefined;
  /** Lifetime of the browser session the login creates, seconds (default 8 h). */
  sessionTtlSeconds?: number | undefined;
  /** Optional userinfo endpoint, asked for claims the id_token lacks. */
  userinfoUrl?: string | undefined;
  /** id_token claims copied into `user.data` (default email, name, groups, roles, …). */
  claims?: string[] | undefined;
}

/** What a session record holds. */
interface SessionRecord {
  user: UserInfo;
  csrf: string;
  via: "dev" | "idp";
  createdAt: number;
}

interface WebState {
  login: BrowserLoginConfig | undefined;
  /** The project's MCP OAuth policy chose the dev login set-up. */
  devLogin: boolean;
  /** Claims other policies read from the signed-in user (copied at login besides the configured ones). */
  claims: Set<string>;
}
const states = new WeakMap<GatewayServices, WebState>();

function state(services: GatewayServices): WebState {
  let s = states.get(services);
  if (!s) states.set(services, (s = { login: undefined, devLogin: false, claims: new Set() }));
  return s;
}

/**
 * Registers the IdP browser login for this gateway (one gateway signs browsers in with one
 * IdP). A second registration at another issuer throws (a start-up error): users of the second
 * policy would sign in at the first IdP, whose subjects are not theirs — the same `sub` at two
 * IdPs would share upstream connections. A second one at the same issuer (another client
 * registration) is ignored with a warning; the first one is used.
 */
export function registerBrowserLogin(services: GatewayServices, config: BrowserLoginConfig): void {
  registerWebRoutes(services);
  const s = state(services);
  if (s.login) {
    if (s.login.issuer !== config.issuer) {
      throw new Error(
        `browserLogin at ${config.issuer} conflicts with the one already configured at another identity provider ` +
          `(${s.login.issuer}); one gateway signs browsers in with one identity provider`,
      );
    }
    if (s.login.clientId !== config.clientId) {
      services.log.warn(
        { issuer: config.issuer, active: s.login.issuer },
        "a second browser login configuration was ignored; the gateway signs browsers in with the first one",
      );
    }
    return;
  }
  s.login = { ...config };
}

/**
 * Turns the loopback-only dev login on for this gateway: the project's login configuration names
 * the gateway's own dev login page instead of an IdP (the documented local set-up).
 */
export function enableDevLogin(services: GatewayServices): void {
  registerWebRoutes(services);
  state(services).devLogin = true;
}

/** True when the dev login may sign browsers in (`settings.devLogin`, or the project's set-up). */
export function devLoginEnabled(services: GatewayServices): boolean {
  return services.settings.devLogin || !!states.get(services)?.devLogin;
}

/**
 * Asks the browser login to keep these top-level IdP claims in the user's `data` too (a policy
 * that decides by a claim, such as the capability filter's role claim, registers it).
 */
export function addLoginClaims(services: GatewayServices, names: Iterable<string>): void {
  const set = state(services).claims;
  for (const n of names) set.add(n);
}

/** Claims registered with {@link addLoginClaims}. */
export function loginClaims(services: GatewayServices): string[] {
  return [...(states.get(services)?.claims ?? [])];
}

/** The registered IdP browser login, if any. */
export function browserLoginConfig(services: GatewayServices): BrowserLoginConfig | undefined {
  return states.get(services)?.login;
}

/** True when browsers can sign in (IdP login registered, or dev login enabled). */
export function browserLoginAvailable(services: GatewayServices): boolean {
  return !!browserLoginConfig(services) || devLoginEnabled(services);
}

/** True when the gateway's public origin is https (cookies get `Secure` and `__Host-`). */
function secureOrigin(settings: GatewaySettings): boolean {
  return settings.publicUrl.startsWith("https:");
}

/** The session cookie's name (`__Host-` prefixed on https origins). */
export function sessionCookieName(settings: GatewaySettings): string {
  return secureOrigin(settings) ? "__Host-tollgate_session" : "tollgate_session";
}

/** Builds a Set-Cookie value with the gateway's cookie attributes. */
export function cookieHeader(
  settings: GatewaySettings,
  name: string,
  value: string,
  opts: { maxAge: number; path?: string; sameSite?: "Lax" | "Strict" },
): string {
  const parts = [`${name}=${value}`, `Path=${opts.path ?? "/"}`, "HttpOnly", `SameSite=${opts.sameSite ?? "Lax"}`];
  parts.push(`Max-Age=${Math.max(0, Math.floor(opts.maxAge))}`);
  if (secureOrigin(settings)) parts.push("Secure");
  return parts.join("; ");
}

/** Reads one cookie from a request. */
export function readCookie(request: Request, name: string): string | undefined {
  const header = request.headers.get("cookie");
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const ID_RE = /^[A-Za-z0-9_-]{43}$/;
const sessionKey = (id: string) => createHash("sha256").update(id).digest("base64url");

/** A fresh random token (256 bits, base64url). */
export function randomToken(): string {
  return randomBytes(32).toString("base64url");
}

/** Constant-time string comparison (lengths are compared via digests). */
export function safeEqual(a: string, b: string): boolean {
  const da = createHash("sha256").update(a).digest();
  const db = createHash("sha256").update(b).digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}

async function loadSession(request: Request, services: GatewayServices): Promise<SessionRecord | undefined> {
  const id = readCookie(request, sessionCookieName(services.settings));
  if (!id || !ID_RE.test(id)) return undefined;
  const rec = await services.store.get<SessionRecord>(SESSION_NS, sessionKey(id));
  return rec?.value;
}

/**
 * Starts a browser session for `user` (after a successful login). Returns the Set-Cookie
 * header value. Any session the request already carried is ended first (no session fixation).
 */
export async function createBrowserSession(
  request: Request,
  services: GatewayServices,
  user: UserInfo,
  opts: { via: "dev" | "idp"; ttlSeconds?: number },
): Promise<string> {
  const old = readCookie(request, sessionCookieName(services.settings));
  if (old && ID_RE.test(old)) await services.store.delete(SESSION_NS, sessionKey(old));
  const id = randomToken();
  const ttl = opts.ttlSeconds ?? browserLoginConfig(services)?.sessionTtlSeconds ?? DEFAULT_SESSION_TTL_SECONDS;
  const record: SessionRecord = { user, csrf: randomToken(), via: opts.via, createdAt: services.now() };
  await services.store.put(SESSION_NS, sessionKey(id), record, { ttlSeconds: ttl });
  services.log.info({ sub: user.sub, via: opts.via }, "browser session started");
  return cookieHeader(services.settings, sessionCookieName(services.settings), id, { maxAge: ttl });
}

/** Ends the request's browser session; returns the Set-Cookie value that clears the cookie. */
export async function endBrowserSession(request: Request, services: GatewayServices): Promise<string> {
  const name = sessionCookieName(services.settings);
  const id = readCookie(request, name);
  if (id && ID_RE.test(id)) await services.store.delete(SESSION_NS, sessionKey(id));
  return cookieHeader(services.settings, name, "", { maxAge: 0 });
}

/** The signed-in browser user, or undefined. */
export async function getBrowserUser(request: Request, services: GatewayServices): Promise<UserInfo | undefined> {
  return (await loadSession(request, services))?.user;
}

/**
 * The signed-in browser user; otherwise a response to return instead: a 302 to the browser
 * login (which comes back to `returnTo`, a same-origin path), or a 403 page explaining that no
 * login is configured.
 */
export async function requireBrowserUser(
  request: Request,
  services: GatewayServices,
  returnTo: string,
): Promise<UserInfo | Response> {
  const user = await getBrowserUser(request, services);
  if (user) return user;
  registerWebRoutes(services);
  if (!browserLoginAvailable(services)) return noLoginPage();
  const base = services.settings.basePath;
  return redirect(`${base}/login?return_to=${encodeURIComponent(safeReturnTo(returnTo, services))}`);
}

/** The page shown when a page needs a signed-in user but no browser login is configured. */
export function noLoginPage(): Response {
  return htmlPage(
    "Sign-in is not available",
    `<h1>Sign-in is not available</h1>` +
      `<p>This page needs to know who you are, but the gateway has no browser login configured.</p>` +
      `<p class="muted">An administrator can configure <code>browserLogin</code> on the route's authentication ` +
      `policy, or enable the loopback-only dev login with <code>TOLLGATE_DEV_LOGIN=1</code>.</p>`,
    { status: 403, account: { signedOut: true } },
  );
}

/**
 * Reduces a return address to a same-origin path (with query). Anything pointing elsewhere
 * (another origin, `//host`, `javascript:`) becomes the default page.
 */
export function safeReturnTo(value: string | null | undefined, services: GatewayServices): string {
  const fallback = `${services.settings.basePath}/connections`;
  if (!value || value.length > 4096) return fallback;
  try {
    const origin = new URL(services.settings.publicUrl).origin;
    const u = new URL(value, origin);
    if (u.origin !== origin) return fallback;
    if (!u.pathname.startsWith("/") || u.pathname.startsWith("//")) return fallback;
    return `${u.pathname}${u.search}`;
  } catch {
    return fallback;
  }
}

/** How the signed-in user is named on pages: e-mail, else name, else subject. */
export function accountLabel(user: UserInfo): string {
  const email = user.data.email;
  const name = user.data.name;
  if (typeof email === "string" && email) return email;
  if (typeof name === "string" && name) return name;
  return user.sub;
}

/**
 * The account bar of a page for this request: who is signed in, with a sign-out form (its CSRF
 * token from the session; `returnTo`, a same-origin page, is where the browser goes after
 * signing out — that page then asks for sign-in again), or "not signed in" with a sign-in link
 * (coming back to `signInReturnTo`) when the gateway has a browser login. Undefined (no bar)
 * only when the session cannot be read.
 */
export async function pageAccount(
  request: Request,
  services: GatewayServices,
  opts: { returnTo?: string | undefined; signInReturnTo?: string | undefined } = {},
): Promise<PageAccount | undefined> {
  const base = services.settings.basePath;
  let s: SessionRecord | undefined;
  try {
    s = await loadSession(request, services);
  } catch {
    return undefined; // the store is failing: the page still renders, without an account bar
  }
  if (s) {
    return {
      label: accountLabel(s.user),
      csrf: s.csrf,
      action: gatewayPaths(base).logout,
      returnTo: opts.returnTo ? safeReturnTo(opts.returnTo, services) : undefined,
    };
  }
  if (!browserLoginAvailable(services)) return { signedOut: true };
  const back = safeReturnTo(opts.signInReturnTo ?? opts.returnTo, services);
  return { signedOut: true, signIn: `${base}/login?return_to=${encodeURIComponent(back)}` };
}

/** The CSRF token of the request's browser session (for the pages' hidden form field). */
export async function csrfToken(request: Request, services: GatewayServices): Promise<string> {
  const s = await loadSession(request, services);
  if (!s) throw new Error("csrfToken needs a browser session; call requireBrowserUser first");
  return s.csrf;
}

/** True when `token` is the CSRF token of the request's browser session (constant time). */
export async function verifyCsrf(request: Request, services: GatewayServices, token: string | null | undefined): Promise<boolean> {
  if (typeof token !== "string" || token.length === 0) return false;
  const s = await loadSession(request, services);
  if (!s) return false;
  return safeEqual(s.csrf, token);
}

/**
 * True when `user` is an administrator: its subject is in `settings.adminSubjects`, or its
 * `data[adminClaim.name]` (a string or an array of strings) holds one of `adminClaim.values`.
 */
export function isAdmin(user: UserInfo | undefined, settings: GatewaySettings): boolean {
  if (!user) return false;
  if (settings.adminSubjects.includes(user.sub)) return true;
  const claim = settings.adminClaim;
  if (!claim) return false;
  const v = user.data[claim.name];
  const values = Array.isArray(v) ? v : typeof v === "string" ? v.split(/[\s,]+/) : [];
  return values.some((x) => typeof x === "string" && claim.values.includes(x));
}

/** Escaped hidden input carrying a CSRF token. */
export function csrfField(token: string): string {
  return `<input type="hidden" name="csrf" value="${escapeHtml(token)}">`;
}

/**
 * Double-submit CSRF protection for forms shown before a session exists (the dev login, a
 * confirmation page without browser login): a random value goes both into a SameSite=Strict
 * cookie scoped to `path` and into the form; the POST must carry both, equal.
 */
export function issueFormNonce(services: GatewayServices, path: string): { token: string; setCookie: string } {
  const token = randomToken();
  const name = secureOrigin(services.settings) ? "__Secure-tollgate_form" : "tollgate_form";
  return { token, setCookie: cookieHeader(services.settings, name, token, { maxAge: 1800, path, sameSite: "Strict" }) };
}

/** Checks a double-submit token from {@link issueFormNonce}. */
export function verifyFormNonce(request: Request, services: GatewayServices, token: string | null | undefined): boolean {
  const name = secureOrigin(services.settings) ? "__Secure-tollgate_form" : "tollgate_form";
  const cookie = readCookie(request, name);
  return typeof token === "string" && !!cookie && token.length > 0 && safeEqual(cookie, token);
}

/**
 * Rejects form posts from other sites: when the browser names an origin in `Origin`, it must be
 * the gateway's public origin or the origin the request was addressed to. `Origin: null` is
 * what browsers send for pages served with `Referrer-Policy: no-referrer` (ours), so it carries
 * no information and the CSRF token decides. Defence in depth only; the token is the check.
 */
export function sameOriginPost(request: Request, services: GatewayServices): boolean {
  const origin = request.headers.get("origin");
  if (!origin || origin === "null") return true;
  const allowed = new Set([new URL(services.settings.publicUrl).origin, new URL(request.url).origin]);
  return allowed.has(origin);
}

/** Reads an `application/x-www-form-urlencoded` body (bounded). */
export async function readForm(request: Request, maxBytes = 16 * 1024): Promise<URLSearchParams | undefined> {
  const type = request.headers.get("content-type") ?? "";
  if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded")) return undefined;
  const text = await request.text();
  if (text.length > maxBytes) return undefined;
  return new URLSearchParams(text);
}
