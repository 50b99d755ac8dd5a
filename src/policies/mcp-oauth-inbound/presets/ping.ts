/**
 * `mcp-ping-oauth-inbound`: a PingOne environment (`https://auth.pingone.{tld}/{environmentId}/as`),
 * or a PingOne custom domain (`https://{customDomain}/as`, where environment and region are not
 * part of the URLs).
 */
import { z } from "zod";
import { fromEndpoints, hostName, presetSchema, uuid, type IdpEndpoints } from "../options.js";
import { oauthBuiltin } from "../policy.js";

/** PingOne region → authentication host. */
export const PING_REGION_HOSTS = {
  "north-america": "auth.pingone.com",
  canada: "auth.pingone.ca",
  europe: "auth.pingone.eu",
  singapore: "auth.pingone.sg",
  australia: "auth.pingone.com.au",
  "asia-pacific": "auth.pingone.asia",
} as const;

export const pingOptionsSchema = presetSchema({
  environmentId: uuid("PingOne environment id").optional(),
  region: z.enum(Object.keys(PING_REGION_HOSTS) as [keyof typeof PING_REGION_HOSTS]).default("north-america"),
  /** e.g. `login.example.com`: a PingOne custom domain. */
  customDomain: hostName("login.example.com", { needsDot: true }).optional(),
}).superRefine((o, ctx) => {
  if (o.environmentId === undefined && o.customDomain === undefined) {
    ctx.addIssue({ code: "custom", path: ["environmentId"], message: "is required unless customDomain is set" });
  }
});

export function pingEndpoints(o: { environmentId?: string | undefined; region: keyof typeof PING_REGION_HOSTS; customDomain?: string | undefined }): IdpEndpoints {
  const i = o.customDomain !== undefined ? `https://${o.customDomain}/as` : `https://${PING_REGION_HOSTS[o.region]}/${o.environmentId}/as`;
  return { issuer: i, jwksUrl: `${i}/jwks`, authorizationUrl: `${i}/authorize`, tokenUrl: `${i}/token` };
}

export const McpPingOAuthInboundPolicy = oauthBuiltin("McpPingOAuthInboundPolicy", "mcp-ping-oauth-inbound", pingOptionsSchema, (o) =>
  fromEndpoints(pingEndpoints(o), o),
);
