/**
 * `mcp-workos-oauth-inbound`: WorkOS User Management (AuthKit). The token endpoint
 * (`/user_management/authenticate`) takes the secret in the body and returns no ID token; the
 * user is read from its access token, a JWT from issuer `…/user_management/{clientId}`.
 * @see https://workos.com/docs/reference/user-management/authentication
 */
import { z } from "zod";
import { fromEndpoints, presetSchema, type IdpEndpoints } from "../options.js";
import { oauthBuiltin } from "../policy.js";

export const workosOptionsSchema = presetSchema(
  {},
  { clientId: z.string().regex(/^client_[A-Za-z0-9]+$/, { error: "must be a WorkOS client id (client_…); is the $env variable it names set?" }) },
);

export function workosEndpoints(o: { clientId: string }): IdpEndpoints {
  const api = "https://api.workos.com";
  return {
    issuer: `${api}/user_management/${o.clientId}`,
    jwksUrl: `${api}/sso/jwks/${o.clientId}`,
    authorizationUrl: `${api}/user_management/authorize`,
    tokenUrl: `${api}/user_management/authenticate`,
  };
}

export const McpWorkosOAuthInboundPolicy = oauthBuiltin("McpWorkosOAuthInboundPolicy", "mcp-workos-oauth-inbound", workosOptionsSchema, (o) =>
  fromEndpoints(workosEndpoints(o), o, {
    tokenEndpointAuthMethod: "client_secret_post",
    idTokenOptional: true,
    authorizationParams: { provider: "authkit" },
  }),
);
