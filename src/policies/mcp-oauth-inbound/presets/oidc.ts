/**
 * `mcp-oidc-oauth-inbound` (Tollgate): any OpenID provider by its issuer; the endpoints come from
 * its discovery document, fetched at start-up.
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html
 */
import * as oauth from "oauth4webapi";
import { fromEndpoints, presetSchema, type IdpEndpoints } from "../options.js";
import { oauthBuiltin } from "../policy.js";
import { httpUrlSchema } from "../../shared/urls.js";

export const oidcOptionsSchema = presetSchema({ issuer: httpUrlSchema });

async function discover(issuer: string, timeoutMs: number): Promise<IdpEndpoints> {
  const url = new URL(issuer);
  const res = await oauth.discoveryRequest(url, { signal: AbortSignal.timeout(timeoutMs), [oauth.allowInsecureRequests]: url.protocol === "http:" });
  const as = await oauth.processDiscoveryResponse(url, res);
  if (!as.authorization_endpoint || !as.token_endpoint || !as.jwks_uri) {
    throw new Error("the discovery document lacks authorization_endpoint, token_endpoint or jwks_uri");
  }
  return { issuer: as.issuer, jwksUrl: as.jwks_uri, authorizationUrl: as.authorization_endpoint, tokenUrl: as.token_endpoint, userinfoUrl: as.userinfo_endpoint };
}

export const McpOidcOAuthInboundPolicy = oauthBuiltin("McpOidcOAuthInboundPolicy", "mcp-oidc-oauth-inbound", oidcOptionsSchema, async (o, init) => {
  try {
    return fromEndpoints(await discover(o.issuer, o.browserLoginOverrides.remoteTimeoutMs), o);
  } catch (err) {
    throw new Error(`policy "${init.name}": OpenID discovery at ${o.issuer} failed: ${(err as Error).message}`);
  }
});
