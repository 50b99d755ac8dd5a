/** `mcp-keycloak-oauth-inbound`: a Keycloak realm; issuer `{keycloakBaseUrl}/realms/{realm}`. */
import { z } from "zod";
import { fromEndpoints, presetSchema, type IdpEndpoints } from "../options.js";
import { oauthBuiltin } from "../policy.js";
import { httpUrlSchema } from "../../shared/urls.js";

export const keycloakOptionsSchema = presetSchema({
  /** The server's base URL, with a prefix such as `/auth` if it has one, without `/realms/…`. */
  keycloakBaseUrl: httpUrlSchema.refine((s) => !/\/realms(\/|$)/.test(new URL(s).pathname) && !s.includes("?"), {
    error: "must be the Keycloak base URL without /realms/… (the realm goes in realm)",
  }),
  realm: z.string().min(1),
});

export function keycloakEndpoints(o: { keycloakBaseUrl: string; realm: string }): IdpEndpoints {
  const i = `${o.keycloakBaseUrl.replace(/\/+$/, "")}/realms/${encodeURIComponent(o.realm)}`;
  const p = `${i}/protocol/openid-connect`;
  return { issuer: i, jwksUrl: `${p}/certs`, authorizationUrl: `${p}/auth`, tokenUrl: `${p}/token` };
}

export const McpKeycloakOAuthInboundPolicy = oauthBuiltin("McpKeycloakOAuthInboundPolicy", "mcp-keycloak-oauth-inbound", keycloakOptionsSchema, (o) =>
  fromEndpoints(keycloakEndpoints(o), o),
);
