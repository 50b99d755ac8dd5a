/**
 * Puts a policy's validated `browserLogin` block into effect: the dev login set-up turns the
 * gateway's loopback dev login on; a federated login is registered with the web login code
 * together with the IdP's issuer and keys.
 */
import type { GatewayServices } from "../../pipeline/services.js";
import { enableDevLogin, registerBrowserLogin, type BrowserLoginConfig } from "../../web/session.js";
import type { BrowserLoginOptions } from "./browser-login.js";
import { isInsecureRemote } from "./urls.js";

/** What the policy knows about the IdP besides the `browserLogin` block. */
export type LoginIdentity = Pick<BrowserLoginConfig, "issuer" | "jwksUrl"> &
  Partial<Pick<BrowserLoginConfig, "claims" | "expectedAudience" | "idTokenOptional" | "authorizationParams" | "reloginPrompt">>;

/** Applies `login` for policy `name`; throws (a start-up error) on what production must not run. */
export function setUpBrowserLogin(services: GatewayServices, name: string, login: BrowserLoginOptions, idp: LoginIdentity): void {
  const { settings, log } = services;
  if (login.dev) {
    if (settings.mode === "production") {
      // Behind a proxy every visitor may look local; production never offers the dev login.
      throw new Error(`policy "${name}": browserLogin.url names the gateway's dev login, which production mode refuses; configure an identity provider`);
    }
    log.warn({ policy: name }, "browsers sign in with the loopback-only dev login (browserLogin.url names the gateway's dev login page)");
    enableDevLogin(services);
    return;
  }
  for (const [field, url] of [["browserLogin.url", login.url], ["browserLogin.tokenUrl", login.tokenUrl!], ["jwksUrl", idp.jwksUrl]] as const) {
    if (!isInsecureRemote(url)) continue;
    const msg = `policy "${name}": ${field} (${url}) uses plain http to a non-loopback host; it could be tampered with in transit`;
    if (settings.mode === "production") throw new Error(msg);
    log.warn({ policy: name }, msg);
  }
  const { dev: _dev, tokenUrl, clientId, claims, ...rest } = login;
  registerBrowserLogin(services, { ...rest, tokenUrl: tokenUrl!, clientId: clientId!, ...idp, claims: claims ?? idp.claims });
}
