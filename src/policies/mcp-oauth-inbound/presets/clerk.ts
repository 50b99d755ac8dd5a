/** `mcp-clerk-oauth-inbound`: a Clerk instance by its Frontend API URL (the issuer). */
import { fromEndpoints, originUrl, presetSchema, type IdpEndpoints } from "../options.js";
import { oauthBuiltin } from "../policy.js";

export const clerkOptionsSchema = presetSchema(
  {
    /** e.g. `https://verb-noun-00.clerk.accounts.dev`: an origin, no path. */
    frontendApiUrl: originUrl("https://verb-noun-00.clerk.accounts.dev"),
  },
  { withPkce: false },
);

export function clerkEndpoints(o: { frontendApiUrl: string }): IdpEndpoints {
  const u = o.frontendApiUrl;
  return { issuer: u, jwksUrl: `${u}/.well-known/jwks.json`, authorizationUrl: `${u}/oauth/authorize`, tokenUrl: `${u}/oauth/token` };
}

export const McpClerkOAuthInboundPolicy = oauthBuiltin("McpClerkOAuthInboundPolicy", "mcp-clerk-oauth-inbound", clerkOptionsSchema, (o) =>
  fromEndpoints(clerkEndpoints(o), o),
);
