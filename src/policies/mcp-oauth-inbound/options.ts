/**
 * Options of `mcp-oauth-inbound` and what its IdP presets share. Every preset resolves to the
 * generic shape `{oidc, browserLogin, gateway, clients, claims}` (plus a few provider traits the
 * login code needs), so one policy implementation serves them all.
 */
import { z } from "zod";
import { browserLoginSchema, loginOverrides, pkceSchema, type BrowserLoginOptions } from "../shared/browser-login.js";
import { httpUrlSchema } from "../shared/urls.js";

const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, { error: "must be a single scope token" });
/** A required secret-like string (usually `$env(…)`). */
export const secret = z.string().min(1, { error: "must not be empty (is the $env variable it names set?)" });
const positiveInt = z.number().int().min(1);

/** The gateway's own authorization server settings. */
export const gatewaySchema = z
  .strictObject({
    /** Lifetime of access tokens issued to MCP clients (default 15 minutes). */
    accessTokenTtlSeconds: positiveInt.default(900),
    /** Lifetime of refresh tokens; each use rotates the token and renews it (default 30 days). */
    refreshTokenTtlSeconds: positiveInt.default(2_592_000),
    /** Accept https URL client ids (Client ID Metadata Documents). */
    cimdEnabled: z.boolean().default(true),
    /** Tollgate: accept RFC 7591 dynamic client registration. */
    dcrEnabled: z.boolean().default(true),
    /** Tollgate: dynamically registered clients unused this many days are forgotten. */
    unusedClientTtlDays: z.number().int().min(1).max(3650).default(30),
    /** Tollgate: how long a user may take to sign in and consent, seconds (default `browserLogin.stateTtlSeconds`). */
    authorizationRequestTtlSeconds: z.number().int().min(60).max(86_400).optional(),
    /** Tollgate: scopes MCP clients may request (listed in the metadata). */
    scopesSupported: z.array(scopeToken).default(["mcp:tools"]),
    /** Tollgate: scopes a token must carry on the route (403 insufficient_scope otherwise). */
    requiredScopes: z.array(scopeToken).default([]),
  })
  .superRefine((g, ctx) => {
    g.requiredScopes.forEach((s, i) => {
      if (!g.scopesSupported.includes(s)) {
        ctx.addIssue({ code: "custom", path: ["requiredScopes", i], message: `"${s}" is not in scopesSupported` });
      }
    });
  });

const trustedIssuer = z
  .strictObject({
    issuer: httpUrlSchema.optional(),
    jwksUrl: httpUrlSchema.optional(),
    expectedClientIds: z.array(z.string().min(1)).optional(),
    subjectMapping: z.enum(["iss_prefix", "iss_tenant_prefix", "sub_id_only"]).default("iss_prefix"),
  })
  .refine((t) => (t.issuer === undefined) === (t.jwksUrl === undefined), { error: "give issuer and jwksUrl together, or neither" });

/**
 * `idJag` of the MCP OAuth policies: cross-app access, inbound — the gateway's token endpoint
 * accepts ID-JAGs from `trustedIssuers` (default: the browser login's IdP) with the JWT bearer
 * grant. See `auth-server/id-jag.ts` and docs/cross-app-access.md.
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-identity-assertion-authz-grant/
 */
export const inboundIdJagSchema = z.discriminatedUnion("enabled", [
  z.strictObject({ enabled: z.literal(false) }),
  z.strictObject({
    enabled: z.literal(true),
    /** Issuers whose ID-JAGs are accepted; an entry without issuer and jwksUrl is the browser login's IdP. */
    trustedIssuers: z.array(trustedIssuer).min(1).optional(),
    /** `authorization_details` types an ID-JAG may carry (none unless listed). */
    authorizationDetailsTypesAllowed: z.array(z.string().min(1)).optional(),
  }),
]);

const clientSchema = z.strictObject({
  clientId: z.string().min(1).max(200),
  clientSecret: secret.optional(),
  clientName: z.string().max(200).optional(),
  redirectUris: z.array(z.string().min(1)).min(1),
});

/** Options every variant accepts besides its IdP settings. */
const common = {
  gateway: gatewaySchema.prefault({}),
  /** Cross-app access, inbound (see {@link inboundIdJagSchema}). */
  idJag: inboundIdJagSchema.optional(),
  /** Tollgate: pre-registered MCP clients. */
  clients: z.array(clientSchema).default([]),
  /** Tollgate: IdP claims copied into `request.user.data` (default email, name, groups, roles, …). */
  claims: z.array(z.string().min(1)).optional(),
};

/** `mcp-oauth-inbound`. */
export const mcpOAuthOptionsSchema = z
  .object({
    /** The organisation's IdP: its issuer and JWKS (to verify its tokens at browser login). */
    oidc: z
      .strictObject({
        issuer: z.string().min(1),
        jwksUrl: httpUrlSchema,
        /** Expected `aud` of the IdP's ID token, or else of the access token it returns at login. */
        audience: z.string().min(1).optional(),
        /** Tollgate: bearer JWTs the IdP minted for this audience are accepted on the route too. */
        bearerAudience: z.string().min(1).optional(),
      })
      .optional(),
    /** How browsers sign in at the IdP (or the gateway's dev login). */
    browserLogin: browserLoginSchema.optional(),
    ...common,
  })
  .superRefine((o, ctx) => {
    if (o.browserLogin && !o.browserLogin.dev && !o.oidc) {
      ctx.addIssue({
        code: "custom",
        path: ["oidc"],
        message: "browserLogin needs oidc { issuer, jwksUrl } to verify the identity provider's tokens",
      });
    }
  });

/** The generic options every variant resolves to, with the provider traits presets add. */
export type McpOAuthOptions = z.output<typeof mcpOAuthOptionsSchema> & {
  /** The provider's token endpoint returns no ID token; the access token (a JWT) names the user. */
  idTokenOptional?: boolean;
  /** Fixed extra authorization request parameters the provider needs. */
  authorizationParams?: Record<string, string>;
  /** `prompt` of the first sign-in after a sign-out (default `login`). */
  reloginPrompt?: string;
};
export type GatewayOptions = z.output<typeof gatewaySchema>;

/**
 * The options of an IdP preset: its own fields plus `clientId`, `clientSecret`, `scope`,
 * `gateway`, `idJag`, `browserLoginOverrides` (with `pkce` unless `withPkce` is false) and
 * Tollgate's `clients` and `claims`.
 */
export function presetSchema<S extends z.ZodRawShape>(own: S, opts: { withPkce?: boolean; clientId?: z.ZodType<string> } = {}) {
  const overrides =
    opts.withPkce === false ? z.strictObject(loginOverrides) : z.strictObject({ ...loginOverrides, pkce: pkceSchema.optional() });
  return z.object({
    ...own,
    clientId: opts.clientId ?? secret,
    clientSecret: secret,
    /** Scopes asked of the IdP. */
    scope: z.string().min(1).default("openid profile email"),
    /** Sign-in timings (and PKCE) for this provider. */
    browserLoginOverrides: overrides.prefault({}),
    ...common,
  });
}

/** What every preset's parsed options carry. */
export interface PresetOptions {
  clientId: string;
  clientSecret: string;
  scope: string;
  browserLoginOverrides: { remoteTimeoutMs: number; stateTtlSeconds: number; sessionTtlSeconds: number; pkce?: boolean | undefined };
  gateway: GatewayOptions;
  idJag?: z.output<typeof inboundIdJagSchema> | undefined;
  clients: McpOAuthOptions["clients"];
  claims?: string[] | undefined;
}

/** IdP endpoints a preset derives from its options. */
export interface IdpEndpoints {
  issuer: string;
  jwksUrl: string;
  authorizationUrl: string;
  tokenUrl: string;
  userinfoUrl?: string | undefined;
}

/** Provider traits a preset may add to the generic options. */
export interface PresetTraits {
  /** Sent as `audience` at the IdP and expected as `oidc.audience` (Auth0 APIs). */
  audience?: string | undefined;
  tokenEndpointAuthMethod?: "client_secret_basic" | "client_secret_post";
  idTokenOptional?: boolean;
  authorizationParams?: Record<string, string>;
  /** `prompt` of the first sign-in after a sign-out, for providers without `prompt=login`. */
  reloginPrompt?: string;
}

/** Builds the generic options from IdP endpoints and a preset's client settings. */
export function fromEndpoints(ep: IdpEndpoints, o: PresetOptions, traits: PresetTraits = {}): McpOAuthOptions {
  const ov = o.browserLoginOverrides;
  const browserLogin: BrowserLoginOptions = {
    url: ep.authorizationUrl,
    tokenUrl: ep.tokenUrl,
    clientId: o.clientId,
    clientSecret: o.clientSecret,
    scope: o.scope,
    audience: traits.audience,
    pkce: ov.pkce ?? true,
    userinfoUrl: ep.userinfoUrl,
    tokenEndpointAuthMethod: traits.tokenEndpointAuthMethod,
    remoteTimeoutMs: ov.remoteTimeoutMs,
    stateTtlSeconds: ov.stateTtlSeconds,
    sessionTtlSeconds: ov.sessionTtlSeconds,
    dev: false,
  };
  return {
    oidc: { issuer: ep.issuer, jwksUrl: ep.jwksUrl, audience: traits.audience },
    browserLogin,
    gateway: o.gateway,
    idJag: o.idJag,
    clients: o.clients,
    claims: o.claims,
    ...(traits.idTokenOptional ? { idTokenOptional: true } : {}),
    ...(traits.authorizationParams ? { authorizationParams: traits.authorizationParams } : {}),
    ...(traits.reloginPrompt ? { reloginPrompt: traits.reloginPrompt } : {}),
  };
}

/** A bare host name (optionally with a port): no scheme, path, query or credentials. */
export function hostName(example: string, extra?: { needsDot?: boolean }) {
  return z.string().refine(
    (s) => /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$/.test(s) && (!extra?.needsDot || s.includes(".")),
    { error: `must be a bare host name such as ${example} (no https://, no path)` },
  );
}

/** An http(s) origin (`https://host[:port]`, a trailing slash allowed): no path, query, fragment or credentials. */
export function originUrl(example: string) {
  return z.string().transform((s, ctx) => {
    let u: URL | undefined;
    try {
      u = new URL(s);
    } catch {
      /* reported below */
    }
    if (!u || (u.protocol !== "https:" && u.protocol !== "http:") || u.username || u.password || u.search || u.hash || s.includes("?") || s.includes("#") || u.pathname !== "/") {
      ctx.addIssue({ code: "custom", message: `must be an origin such as ${example} (no path, query, fragment or credentials)` });
      return z.NEVER;
    }
    return u.origin;
  });
}

/** A UUID (8-4-4-4-12 hex digits). */
export const uuid = (what: string) =>
  z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, { error: `must be the ${what}, a UUID` });
