/** `mcp-auth0-oauth-inbound`: Auth0 tenant by its domain; issuer `https://{domain}/` (with the slash). */
import { z } from "zod";
import { fromEndpoints, hostName, presetSchema, type IdpEndpoints } from "../options.js";
import { oauthBuiltin } from "../policy.js";

export const auth0OptionsSchema = presetSchema({
  /** e.g. `my-tenant.us.auth0.com`: a bare host name. */
  auth0Domain: hostName("my-tenant.us.auth0.com", { needsDot: true }),
  /** Auth0 API identifier: sent as `audience` at login and expected as `oidc.audience`. */
  audience: z.string().min(1).optional(),
});

export function auth0Endpoints(o: { auth0Domain: string }): IdpEndpoints {
  const d = `https://${o.auth0Domain}`;
  return { issuer: `${d}/`, jwksUrl: `${d}/.well-known/jwks.json`, authorizationUrl: `${d}/authorize`, tokenUrl: `${d}/oauth/token` };
}

export const McpAuth0OAuthInboundPolicy = oauthBuiltin("McpAuth0OAuthInboundPolicy", "mcp-auth0-oauth-inbound", auth0OptionsSchema, (o) =>
  fromEndpoints(auth0Endpoints(o), o, { audience: o.audience }),
);
