/** `mcp-google-oauth-inbound`: Google accounts (fixed endpoints; the client id has Google's shape). */
import { z } from "zod";
import { fromEndpoints, presetSchema, type IdpEndpoints } from "../options.js";
import { oauthBuiltin } from "../policy.js";

export const googleOptionsSchema = presetSchema(
  {},
  {
    clientId: z.string().regex(/^[A-Za-z0-9-]+\.apps\.googleusercontent\.com$/, {
      error: "must be a Google OAuth client id (…apps.googleusercontent.com); is the $env variable it names set?",
    }),
  },
);

export function googleEndpoints(): IdpEndpoints {
  return {
    issuer: "https://accounts.google.com",
    jwksUrl: "https://www.googleapis.com/oauth2/v3/certs",
    authorizationUrl: "https://accounts.google.com/o/oauth2/v2/auth",
    tokenUrl: "https://oauth2.googleapis.com/token",
  };
}

export const McpGoogleOAuthInboundPolicy = oauthBuiltin("McpGoogleOAuthInboundPolicy", "mcp-google-oauth-inbound", googleOptionsSchema, (o) =>
  // Google has no prompt=login; after a sign-out it shows its account chooser instead.
  fromEndpoints(googleEndpoints(), o, { reloginPrompt: "select_account" }),
);
