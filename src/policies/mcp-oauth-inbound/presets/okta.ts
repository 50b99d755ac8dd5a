/**
 * `mcp-okta-oauth-inbound`: an Okta org. Without `authorizationServerId` the org authorization
 * server (issuer `https://{domain}`); with it, that custom server (`…/oauth2/{id}`).
 */
import { z } from "zod";
import { fromEndpoints, hostName, presetSchema, type IdpEndpoints } from "../options.js";
import { oauthBuiltin } from "../policy.js";

export const oktaOptionsSchema = presetSchema({
  oktaDomain: hostName("my-org.okta.com", { needsDot: true }),
  /** A custom authorization server's id, e.g. `default`. */
  authorizationServerId: z.string().regex(/^[A-Za-z0-9_-]+$/, { error: "must be an authorization server id such as default" }).optional(),
});

export function oktaEndpoints(o: { oktaDomain: string; authorizationServerId?: string | undefined }): IdpEndpoints {
  const d = `https://${o.oktaDomain}`;
  if (o.authorizationServerId === undefined) {
    return { issuer: d, jwksUrl: `${d}/oauth2/v1/keys`, authorizationUrl: `${d}/oauth2/v1/authorize`, tokenUrl: `${d}/oauth2/v1/token` };
  }
  const i = `${d}/oauth2/${o.authorizationServerId}`;
  return { issuer: i, jwksUrl: `${i}/v1/keys`, authorizationUrl: `${i}/v1/authorize`, tokenUrl: `${i}/v1/token` };
}

export const McpOktaOAuthInboundPolicy = oauthBuiltin("McpOktaOAuthInboundPolicy", "mcp-okta-oauth-inbound", oktaOptionsSchema, (o) =>
  fromEndpoints(oktaEndpoints(o), o),
);
