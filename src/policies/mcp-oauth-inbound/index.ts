/**
 * `mcp-oauth-inbound` and its IdP presets (one file each under `presets/`): the gateway as OAuth
 * authorization server and resource server for MCP clients. See `policy.ts`.
 */
import { registerBuiltin, type BuiltinInbound } from "../registry.js";
import { oauthBuiltin } from "./policy.js";
import { mcpOAuthOptionsSchema } from "./options.js";
import { McpAuth0OAuthInboundPolicy } from "./presets/auth0.js";
import { McpClerkOAuthInboundPolicy } from "./presets/clerk.js";
import { McpCognitoOAuthInboundPolicy } from "./presets/cognito.js";
import { McpEntraOAuthInboundPolicy } from "./presets/entra.js";
import { McpGoogleOAuthInboundPolicy } from "./presets/google.js";
import { McpKeycloakOAuthInboundPolicy } from "./presets/keycloak.js";
import { McpLogtoOAuthInboundPolicy } from "./presets/logto.js";
import { McpOidcOAuthInboundPolicy } from "./presets/oidc.js";
import { McpOktaOAuthInboundPolicy } from "./presets/okta.js";
import { McpOneLoginOAuthInboundPolicy } from "./presets/onelogin.js";
import { McpPingOAuthInboundPolicy } from "./presets/ping.js";
import { McpWorkosOAuthInboundPolicy } from "./presets/workos.js";

export { createMcpOAuthPolicy, jwtScopes } from "./policy.js";

export const McpOAuthInboundPolicy = oauthBuiltin("McpOAuthInboundPolicy", "mcp-oauth-inbound", mcpOAuthOptionsSchema, (o) => o);

for (const b of [
  McpOAuthInboundPolicy,
  McpAuth0OAuthInboundPolicy,
  McpClerkOAuthInboundPolicy,
  McpCognitoOAuthInboundPolicy,
  McpEntraOAuthInboundPolicy,
  McpGoogleOAuthInboundPolicy,
  McpKeycloakOAuthInboundPolicy,
  McpLogtoOAuthInboundPolicy,
  McpOktaOAuthInboundPolicy,
  McpOneLoginOAuthInboundPolicy,
  McpPingOAuthInboundPolicy,
  McpWorkosOAuthInboundPolicy,
  McpOidcOAuthInboundPolicy,
]) {
  registerBuiltin(b as BuiltinInbound<unknown>);
}
