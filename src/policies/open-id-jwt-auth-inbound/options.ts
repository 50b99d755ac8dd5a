import { z } from "zod";
import { browserLoginSchema } from "../shared/browser-login.js";
import { httpUrlSchema } from "../shared/urls.js";
import { headerNameSchema } from "../shared/headers.js";

const audienceSchema = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/** Options every JWT policy variant shares. */
const common = {
  /** Allow requests without a (valid) token to continue with no `request.user`. */
  allowUnauthenticatedRequests: z.boolean().default(false),
  /** Claim to use as `request.user.sub` (default `sub`). */
  subPropertyName: z.string().min(1).optional(),
  /** Header that carries `Bearer <token>` (default `Authorization`). */
  authHeader: headerNameSchema.default("Authorization"),
  /** Scopes listed in the protected resource metadata and in challenges. */
  scopesSupported: z.array(z.string().min(1)).optional(),
  /** Seconds between JWKS refetches caused by unknown key ids (default 30). */
  jwksCooldownSeconds: z.number().min(0).default(30),
  /** IdP login for the gateway's browser pages (connect, connections). */
  browserLogin: browserLoginSchema.optional(),
  /** Accepted for compatibility; the metadata document is always served on MCP routes. */
  oAuthResourceMetadataEnabled: z.boolean().optional(),
};

/** Options of `open-id-jwt-auth-inbound`. */
export const openIdJwtOptionsSchema = z.strictObject({
  /** Expected `iss` claim; also the authorization server named in the resource metadata. */
  issuer: z.string().min(1),
  /** Expected `aud` claim (one value, or several of which the token must carry one). */
  audience: audienceSchema.optional(),
  /** The provider's JWKS URL. */
  jwkUrl: httpUrlSchema,
  ...common,
});

/** Options of `auth0-jwt-auth-inbound`. */
export const auth0JwtOptionsSchema = z.strictObject({
  /** e.g. `my-tenant.us.auth0.com` (a bare host name, no scheme). */
  auth0Domain: z
    .string()
    .regex(/^[A-Za-z0-9.-]+(:\d+)?$/, { error: "must be a host name such as my-tenant.us.auth0.com (no https://)" }),
  audience: audienceSchema.optional(),
  ...common,
});

export type OpenIdJwtOptions = z.output<typeof openIdJwtOptionsSchema>;
export type Auth0JwtOptions = z.output<typeof auth0JwtOptionsSchema>;

/** Auth0 tenants: issuer `https://<domain>/`, keys at `https://<domain>/.well-known/jwks.json`. */
export function auth0ToOpenId(o: Auth0JwtOptions): OpenIdJwtOptions {
  const { auth0Domain, ...rest } = o;
  return { ...rest, issuer: `https://${auth0Domain}/`, jwkUrl: `https://${auth0Domain}/.well-known/jwks.json` };
}
