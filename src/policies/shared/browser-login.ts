/**
 * The `browserLogin` block: which OpenID Connect provider signs a user's browser in to the
 * gateway (connect pages, connections page). The same shape is accepted by every policy that
 * can name a browser login; the web login code reads it from the policy.
 *
 * @see https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth
 * @see https://www.rfc-editor.org/rfc/rfc7636 PKCE
 */
import { z } from "zod";
import { httpUrlSchema } from "./urls.js";

/**
 * `{url, tokenUrl, clientId, clientSecret?, scope, audience?, pkce, …}`. Unknown members are kept
 * (not rejected) so newer login options reach the login code unchanged.
 */
export const browserLoginSchema = z.looseObject({
  /** The provider's authorization endpoint. */
  url: httpUrlSchema,
  /** The provider's token endpoint. */
  tokenUrl: httpUrlSchema,
  clientId: z.string().min(1, { error: "must not be empty (is the $env variable it names set?)" }),
  /** Omit for a public client (then `pkce` must stay on). */
  clientSecret: z.string().min(1).optional(),
  scope: z.string().default("openid profile email"),
  /** Sent as `audience` on the authorization request (providers such as Auth0 need it). */
  audience: z.string().optional(),
  pkce: z.boolean().default(true),
  /** Optional userinfo endpoint for claims the ID token lacks. */
  userinfoUrl: httpUrlSchema.optional(),
  /** Time limit for calls to the provider. */
  remoteTimeoutMs: z.number().int().positive().default(10_000),
  /** Lifetime of the browser session the login creates. */
  sessionTtlSeconds: z.number().int().positive().default(28_800),
  /** id_token claims copied into the browser user's `data` (the login code has a default list). */
  claims: z.array(z.string().min(1)).optional(),
  /** Lifetime of a pending login (state, nonce, PKCE verifier). */
  stateTtlSeconds: z.number().int().positive().default(900),
}).refine((b) => b.clientSecret !== undefined || b.pkce, {
  error: "a public client (no clientSecret) must use PKCE; set pkce to true or add clientSecret",
  path: ["pkce"],
});

export type BrowserLoginConfig = z.output<typeof browserLoginSchema>;
