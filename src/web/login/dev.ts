/**
 * The dev login: a page with a username field that signs the browser in as `sub=<username>`.
 * For local development only: it answers 403 unless `settings.devLogin` is on AND the request
 * comes straight from a loopback address (no proxy in between: requests carrying `Forwarded`,
 * `X-Forwarded-*`, `X-Real-IP`, `Via` and the like are refused too, since a local reverse proxy
 * makes every peer look local)
 * AND its `Host` is a loopback name or the public URL's host. The `Host` check stops DNS
 * rebinding: a foreign page whose name resolves to 127.0.0.1 would otherwise be same-origin
 * with this form, read its nonce, and sign in as anyone.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#security-warning
 */
import { escapeHtml, htmlPage, redirect } from "../html.js";
import {
  createBrowserSession,
  devLoginEnabled,
  issueFormNonce,
  pageAccount,
  readForm,
  safeReturnTo,
  sameOriginPost,
  verifyFormNonce,
} from "../session.js";
import type { SystemRequestContext } from "../../routing/system-routes.js";
import { gatewayPaths } from "../../routing/gateway-paths.js";

/** The name the form suggests (the subject Zuplo's dev login always uses). */
export const DEFAULT_DEV_USER = "dev-browser-user";

/** Usernames the dev login accepts (also the subject). */
const USERNAME_RE = /^[A-Za-z0-9._@+-]{1,64}$/;

/** True for 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  const a = addr.toLowerCase().replace(/^::ffff:/, "");
  return a === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** True for the host names of a loopback URL: `localhost`, 127.0.0.0/8 and `[::1]`. */
export function isLoopbackHostname(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === "localhost" || h === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Headers reverse proxies, load balancers and tunnels add: their presence means "not local". */
const PROXY_HEADERS = [
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-real-ip",
  "via",
  "cf-connecting-ip",
  "true-client-ip",
];

async function refusal(request: Request, ctx: SystemRequestContext): Promise<Response | undefined> {
  if (!devLoginEnabled(ctx.services)) {
    return htmlPage(
      "Dev login is off",
      `<h1>Dev login is off</h1><p>The development login is disabled on this gateway ` +
        `(enable it for local work with <code>TOLLGATE_DEV_LOGIN=1</code>).</p>`,
      { status: 403, account: await pageAccount(request, ctx.services) },
    );
  }
  const proxied = PROXY_HEADERS.some((h) => request.headers.has(h));
  const host = new URL(request.url).hostname;
  const ownName = isLoopbackHostname(host) || host === new URL(ctx.services.settings.publicUrl).hostname;
  if (!isLoopbackAddress(ctx.remoteAddress) || proxied || !ownName) {
    return htmlPage(
      "Dev login is loopback-only",
      `<h1>Dev login is loopback-only</h1><p>The development login only answers browsers on the ` +
        `gateway's own machine. Configure an identity provider (<code>browserLogin</code>) for everyone else.</p>`,
      { status: 403, account: await pageAccount(request, ctx.services) },
    );
  }
  return undefined;
}

async function formPage(request: Request, ctx: SystemRequestContext, returnTo: string, error?: string): Promise<Response> {
  const path = gatewayPaths(ctx.services.settings.basePath).devLogin;
  const nonce = issueFormNonce(ctx.services, path);
  const account = await pageAccount(request, ctx.services, { returnTo: `${path}?return_to=${encodeURIComponent(returnTo)}` });
  const signedIn = account && !("signedOut" in account) ? account : undefined;
  const body =
    `<h1>Dev login</h1>` +
    `<p class="muted">Local development only: sign in as any user name. The name becomes your subject (<code>sub</code>).</p>` +
    (signedIn ? `<p>Signing in here replaces the current sign-in (${escapeHtml(signedIn.label)}).</p>` : "") +
    (error ? `<p class="warn">${escapeHtml(error)}</p>` : "") +
    `<form method="post" action="${escapeHtml(path)}">` +
    `<label for="username">User name</label>` +
    `<input type="text" id="username" name="username" autocomplete="username" required autofocus maxlength="64" value="${DEFAULT_DEV_USER}">` +
    `<input type="hidden" name="return_to" value="${escapeHtml(returnTo)}">` +
    `<input type="hidden" name="csrf" value="${escapeHtml(nonce.token)}">` +
    `<div class="actions"><button type="submit">Sign in</button></div></form>`;
  // The sign-in redirects to `return_to`, which may redirect on to an upstream's authorization
  // server (a connect link with redirect=true); browsers apply form-action to that whole chain.
  return htmlPage("Dev login", body, {
    status: error ? 400 : 200,
    headers: { "set-cookie": nonce.setCookie },
    formAction: ["http:", "https:"],
    account,
  });
}

/** GET `<basePath>/oauth/dev-login` (alias `<basePath>/login/dev`): the form. */
export async function devLoginPage(request: Request, ctx: SystemRequestContext): Promise<Response> {
  const refused = await refusal(request, ctx);
  if (refused) return refused;
  const returnTo = safeReturnTo(new URL(request.url).searchParams.get("return_to"), ctx.services);
  return formPage(request, ctx, returnTo);
}

/** POST `<basePath>/oauth/dev-login`: starts the session and returns to a same-origin page. */
export async function devLoginSubmit(request: Request, ctx: SystemRequestContext): Promise<Response> {
  const refused = await refusal(request, ctx);
  if (refused) return refused;
  const form = await readForm(request);
  const returnTo = safeReturnTo(form?.get("return_to"), ctx.services);
  if (!form || !sameOriginPost(request, ctx.services) || !verifyFormNonce(request, ctx.services, form.get("csrf"))) {
    return htmlPage(
      "Sign-in form expired",
      `<h1>Sign-in form expired</h1><p>Please <a href="${escapeHtml(
        `${gatewayPaths(ctx.services.settings.basePath).devLogin}?return_to=${encodeURIComponent(returnTo)}`,
      )}">open the sign-in page again</a>.</p>`,
      { status: 403, account: await pageAccount(request, ctx.services) },
    );
  }
  const username = (form.get("username") ?? "").trim();
  if (!USERNAME_RE.test(username)) {
    return formPage(request, ctx, returnTo, "Use 1-64 letters, digits or . _ @ + -");
  }
  const cookie = await createBrowserSession(
    request,
    ctx.services,
    { sub: username, data: { name: username, login: "dev" } },
    { via: "dev" },
  );
  return redirect(returnTo, { status: 303, headers: { "set-cookie": cookie } });
}
