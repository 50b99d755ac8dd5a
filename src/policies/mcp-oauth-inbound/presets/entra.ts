/**
 * `mcp-entra-oauth-inbound`: one Microsoft Entra ID tenant (v2.0 endpoints). Not a domain, not
 * `common`: the ID token's issuer names the tenant GUID.
 */
import { fromEndpoints, presetSchema, uuid, type IdpEndpoints } from "../options.js";
import { oauthBuiltin } from "../policy.js";

export const entraOptionsSchema = presetSchema({
  tenantId: uuid("directory (tenant) id; multi-tenant names such as common, organizations or consumers and domain names are not accepted"),
});

export function entraEndpoints(o: { tenantId: string }): IdpEndpoints {
  const b = `https://login.microsoftonline.com/${o.tenantId}`;
  return { issuer: `${b}/v2.0`, jwksUrl: `${b}/discovery/v2.0/keys`, authorizationUrl: `${b}/oauth2/v2.0/authorize`, tokenUrl: `${b}/oauth2/v2.0/token` };
}

export const McpEntraOAuthInboundPolicy = oauthBuiltin("McpEntraOAuthInboundPolicy", "mcp-entra-oauth-inbound", entraOptionsSchema, (o) =>
  fromEndpoints(entraEndpoints(o), o),
);
