/**
 * Browser login endpoints: `<basePath>/login` (start), `<basePath>/login/callback` (IdP
 * redirect URI), `<basePath>/login/dev` (loopback dev login) and `<basePath>/logout`.
 */
import type { GatewayServices } from "../../pipeline/services.js";
import type { SystemRequestContext } from "../../routing/system-routes.js";
import { htmlPage, redirect } from "../html.js";
import { endBrowserSession, readForm, sameOriginPost, verifyCsrf } from "../session.js";
import { devLoginPage, devLoginSubmit } from "./dev.js";
import { loginCallback, loginStart } from "./idp.js";

export { isLoopbackAddress } from "./dev.js";
export { idpRedirectUri, userFromClaims, DEFAULT_CLAIMS } from "./idp.js";

/** POST `<basePath>/logout` (form with the session's CSRF token): ends the browser session. */
async function logout(request: Request, ctx: SystemRequestContext): Promise<Response> {
  const form = await readForm(request);
  if (!form || !sameOriginPost(request, ctx.services) || !(await verifyCsrf(request, ctx.services, form.get("csrf")))) {
    return htmlPage("Sign-out failed", "<h1>Sign-out failed</h1><p>The form expired; reload the page and try again.</p>", {
      status: 403,
    });
  }
  const cookie = await endBrowserSession(request, ctx.services);
  return redirect(`${ctx.services.settings.basePath}/login/signed-out`, { status: 303, headers: { "set-cookie": cookie } });
}

/** Registers the login endpoints on the gateway's system routes. */
export function registerLoginRoutes(services: GatewayServices): void {
  const base = services.settings.basePath;
  services.systemRoutes.add(["GET"], `${base}/login`, loginStart);
  services.systemRoutes.add(["GET"], `${base}/login/callback`, loginCallback);
  services.systemRoutes.add(["GET"], `${base}/login/dev`, devLoginPage);
  services.systemRoutes.add(["POST"], `${base}/login/dev`, devLoginSubmit);
  services.systemRoutes.add(["GET"], `${base}/login/signed-out`, () =>
    htmlPage("Signed out", "<h1>Signed out</h1><p>You are signed out of the gateway.</p>"),
  );
  services.systemRoutes.add(["POST"], `${base}/logout`, logout);
}
