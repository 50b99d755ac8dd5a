/**
 * Browser login endpoints: `<basePath>/login` (start), `<basePath>/oauth/callback` (the IdP
 * redirect URI; alias `<basePath>/login/callback`), `<basePath>/oauth/dev-login` (loopback dev
 * login; alias `<basePath>/login/dev`) and `<basePath>/logout`.
 */
import type { GatewayServices } from "../../pipeline/services.js";
import type { SystemRequestContext } from "../../routing/system-routes.js";
import { gatewayPaths } from "../../routing/gateway-paths.js";
import { htmlPage, redirect } from "../html.js";
import { endBrowserSession, pageAccount, readForm, safeReturnTo, sameOriginPost, verifyCsrf } from "../session.js";
import { devLoginPage, devLoginSubmit } from "./dev.js";
import { loginCallback, loginStart, signedOutCookie } from "./idp.js";

export { isLoopbackAddress } from "./dev.js";
export { idpRedirectUri, userFromClaims, DEFAULT_CLAIMS } from "./idp.js";

/**
 * POST `<basePath>/logout` (form with the session's CSRF token): ends the browser session, and
 * marks the browser so that its next sign-in at the IdP asks for a fresh login (else the IdP's
 * own session would sign the same user straight back in).
 */
async function logout(request: Request, ctx: SystemRequestContext): Promise<Response> {
  const form = await readForm(request);
  if (!form || !sameOriginPost(request, ctx.services) || !(await verifyCsrf(request, ctx.services, form.get("csrf")))) {
    return htmlPage("Sign-out failed", "<h1>Sign-out failed</h1><p>The form expired; reload the page and try again.</p>", {
      status: 403,
      account: await pageAccount(request, ctx.services),
    });
  }
  const headers = new Headers();
  headers.append("set-cookie", await endBrowserSession(request, ctx.services));
  headers.append("set-cookie", signedOutCookie(ctx.services, true));
  // A page that offers sign-out may name itself (or the link to retry) as `return_to`: it then
  // asks for sign-in again and continues there.
  const back = form.get("return_to");
  const next = back ? safeReturnTo(back, ctx.services) : `${ctx.services.settings.basePath}/login/signed-out`;
  return redirect(next, { status: 303, headers });
}

/** GET `<basePath>/login/signed-out`. */
async function signedOut(request: Request, ctx: SystemRequestContext): Promise<Response> {
  return htmlPage("Signed out", "<h1>Signed out</h1><p>You are signed out of the gateway.</p>", {
    account: await pageAccount(request, ctx.services),
  });
}

/** Registers the login endpoints on the gateway's system routes. */
export function registerLoginRoutes(services: GatewayServices): void {
  const base = services.settings.basePath;
  const p = gatewayPaths(base);
  services.systemRoutes.add(["GET"], `${base}/login`, loginStart);
  for (const path of [p.callback, p.legacy.idpCallback]) services.systemRoutes.add(["GET"], path, loginCallback);
  for (const path of [p.devLogin, p.legacy.devLogin]) {
    services.systemRoutes.add(["GET"], path, devLoginPage);
    services.systemRoutes.add(["POST"], path, devLoginSubmit);
  }
  services.systemRoutes.add(["GET"], `${base}/login/signed-out`, signedOut);
  services.systemRoutes.add(["POST"], `${base}/logout`, logout);
}
