/**
 * `mcp-cognito-oauth-inbound`: an Amazon Cognito user pool. The issuer and keys live at the
 * regional `cognito-idp` host; sign-in happens at the pool's hosted-UI domain.
 */
import { z } from "zod";
import { fromEndpoints, hostName, presetSchema, type IdpEndpoints } from "../options.js";
import { oauthBuiltin } from "../policy.js";

export const cognitoOptionsSchema = presetSchema({
  /** e.g. `us-east-1`. */
  awsRegion: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, { error: "must be an AWS region such as us-east-1" }),
  /** e.g. `us-east-1_AbCdEf123`. */
  userPoolId: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+_[0-9A-Za-z]+$/, { error: "must be a user pool id such as us-east-1_AbCdEf123" }),
  /** The hosted-UI domain, e.g. `my-app.auth.us-east-1.amazoncognito.com` or a custom domain. */
  userPoolDomain: hostName("my-app.auth.us-east-1.amazoncognito.com", { needsDot: true }),
}).superRefine((o, ctx) => {
  if (!o.userPoolId.startsWith(`${o.awsRegion}_`)) {
    ctx.addIssue({ code: "custom", path: ["userPoolId"], message: `must belong to awsRegion ${o.awsRegion} (it starts with the region of its pool)` });
  }
});

export function cognitoEndpoints(o: { awsRegion: string; userPoolId: string; userPoolDomain: string }): IdpEndpoints {
  const issuer = `https://cognito-idp.${o.awsRegion}.amazonaws.com/${o.userPoolId}`;
  const d = `https://${o.userPoolDomain}`;
  return { issuer, jwksUrl: `${issuer}/.well-known/jwks.json`, authorizationUrl: `${d}/oauth2/authorize`, tokenUrl: `${d}/oauth2/token` };
}

export const McpCognitoOAuthInboundPolicy = oauthBuiltin("McpCognitoOAuthInboundPolicy", "mcp-cognito-oauth-inbound", cognitoOptionsSchema, (o) =>
  fromEndpoints(cognitoEndpoints(o), o),
);
