/** `mcp-logto-oauth-inbound`: a Logto tenant by its endpoint; the OIDC provider is at `{endpoint}/oidc`. */
import { fromEndpoints, originUrl, presetSchema, type IdpEndpoints } from "../options.js";
import { oauthBuiltin } from "../policy.js";

export const logtoOptionsSchema = presetSchema({
  /** e.g. `https://abc123.logto.app`: an origin, no path. */
  logtoEndpoint: originUrl("https://abc123.logto.app"),
});

export function logtoEndpoints(o: { logtoEndpoint: string }): IdpEndpoints {
  const i = `${o.logtoEndpoint}/oidc`;
  return { issuer: i, jwksUrl: `${i}/jwks`, authorizationUrl: `${i}/auth`, tokenUrl: `${i}/token` };
}

export const McpLogtoOAuthInboundPolicy = oauthBuiltin("McpLogtoOAuthInboundPolicy", "mcp-logto-oauth-inbound", logtoOptionsSchema, (o) =>
  fromEndpoints(logtoEndpoints(o), o),
);
