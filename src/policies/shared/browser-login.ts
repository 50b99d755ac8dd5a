/**
 * The `browserLogin` block: which OpenID Connect provider signs a user's browser in to the
 * gateway (consent, connect and connections pages). The same shape is accepted by every policy
 * that can name a browser login; the web login code reads it from the policy.
 *
 * Two set-ups are valid: a federated login (`url`, `tokenUrl`, `clientId`, optional
 * `clientSecret`), or the gateway's own loopback dev login (`url` naming the gateway's
 * `…/oauth/dev-login` page, nothing else).
 *
 * @see https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth
 * @see https://www.rfc-editor.org/rfc/rfc7636 PKCE
 */
import { z } from "zod";
import { httpUrlSchema } from "./urls.js";

/** Path suffix of the gateway's dev login page in the documented dev set-up. */
const DEV_LOGIN_SUFFIX = /\/oauth\/dev-login\/?$/;

/** True when `url` names the gateway's own dev login page (`{basePath}/oauth/dev-login`). */
export function isDevLoginUrl(url: string): boolean {
  try {
    return DEV_LOGIN_SUFFIX.test(new URL(url).pathname);
  } catch {
    return false;
  }
}

const positiveInt = z.number().int().min(1);

/**
 * `pkce`: `"S256"` or `"none"`. A boolean (`true` = S256, `false` = none) is also accepted, as
 * earlier Tollgate releases took it. Unset means S256 (a public client must use it anyway).
 */
export const pkceSchema = z
  .union([z.enum(["S256", "none"]), z.boolean()], { error: 'must be "S256" or "none"' })
  .transform((v) => v === true || v === "S256");

/**
 * Per-login settings a preset's `browserLoginOverrides` may change (`pkce` only where the
 * provider's preset offers it).
 */
export const loginOverrides = {
  /** Time limit for each call to the provider (token, JWKS, userinfo), ms. */
  remoteTimeoutMs: positiveInt.default(10_000),
  /** Lifetime of a pending sign-in (state, nonce, PKCE verifier) and of an authorization request, seconds. */
  stateTtlSeconds: positiveInt.default(900),
  /** Lifetime of the browser session the login creates, seconds. */
  sessionTtlSeconds: positiveInt.default(28_800),
};

/** `{url, tokenUrl?, clientId?, clientSecret?, scope, audience?, pkce, …}`; unknown members are errors. */
export const browserLoginSchema = z
  .strictObject({
    /** The provider's authorization endpoint, or the gateway's dev login page. */
    url: httpUrlSchema,
    /** The provider's token endpoint (federated login only). */
    tokenUrl: httpUrlSchema.optional(),
    /** The gateway's client at the provider (federated login only). */
    clientId: z.string().min(1, { error: "must not be empty (is the $env variable it names set?)" }).optional(),
    /** Omit for a public client (then `pkce` must stay S256). */
    clientSecret: z.string().min(1, { error: "must not be empty (is the $env variable it names set?)" }).optional(),
    scope: z.string().min(1).default("openid profile email"),
    /** Sent as `audience` on the authorization request (providers such as Auth0 need it). */
    audience: z.string().min(1).optional(),
    pkce: pkceSchema.optional(),
    /** Tollgate: optional userinfo endpoint for claims the ID token lacks. */
    userinfoUrl: httpUrlSchema.optional(),
    /** Tollgate: ID token claims copied into the user's `data` (the login code has a default list). */
    claims: z.array(z.string().min(1)).optional(),
    /** Tollgate: how the gateway authenticates at the token endpoint (default `client_secret_basic`). */
    tokenEndpointAuthMethod: z.enum(["client_secret_basic", "client_secret_post"]).optional(),
    ...loginOverrides,
  })
  .transform((b, ctx) => {
    const dev = b.tokenUrl === undefined && b.clientId === undefined && b.clientSecret === undefined && isDevLoginUrl(b.url);
    if (!dev) {
      for (const key of ["tokenUrl", "clientId"] as const) {
        if (b[key] === undefined) {
          ctx.addIssue({
            code: "custom",
            path: [key],
            message: isDevLoginUrl(b.url)
              ? "the dev login set-up names only url (the gateway's …/oauth/dev-login page); remove tokenUrl, clientId and clientSecret"
              : `is required for a federated login (url is not the gateway's …/oauth/dev-login page)`,
          });
        }
      }
    }
    const pkce = b.pkce ?? true;
    if (!dev && !pkce && b.clientSecret === undefined) {
      ctx.addIssue({ code: "custom", path: ["pkce"], message: 'a public client (no clientSecret) must use PKCE; set pkce to "S256" or add clientSecret' });
    }
    return { ...b, pkce, dev };
  });

export type BrowserLoginOptions = z.output<typeof browserLoginSchema>;
