/**
 * `mcp-onelogin-oauth-inbound`: a OneLogin account by its subdomain (OIDC v2 endpoints). OneLogin
 * applications authenticate at the token endpoint with the secret in the body (method "POST").
 */
import { z } from "zod";
import { fromEndpoints, presetSchema, type IdpEndpoints } from "../options.js";
import { oauthBuiltin } from "../policy.js";

export const oneLoginOptionsSchema = presetSchema(
  {
    /** e.g. `acme` for `acme.onelogin.com`. */
    oneLoginSubdomain: z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/, {
      error: "must be the account subdomain only, such as acme (no https://, no .onelogin.com, no path)",
    }),
  },
  { withPkce: false },
);

export function oneLoginEndpoints(o: { oneLoginSubdomain: string }): IdpEndpoints {
  const i = `https://${o.oneLoginSubdomain}.onelogin.com/oidc/2`;
  return { issuer: i, jwksUrl: `${i}/certs`, authorizationUrl: `${i}/auth`, tokenUrl: `${i}/token` };
}

export const McpOneLoginOAuthInboundPolicy = oauthBuiltin("McpOneLoginOAuthInboundPolicy", "mcp-onelogin-oauth-inbound", oneLoginOptionsSchema, (o) =>
  fromEndpoints(oneLoginEndpoints(o), o, { tokenEndpointAuthMethod: "client_secret_post" }),
);
