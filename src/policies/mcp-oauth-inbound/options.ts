/**
 * Options of `mcp-oauth-inbound` and its IdP presets. Every preset resolves to the generic
 * shape `{oidc, browserLogin, gateway, clients, claims}`.
 */
import { z } from "zod";
import { browserLoginSchema } from "../shared/browser-login.js";
import { httpUrlSchema } from "../shared/urls.js";

const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, { error: "must be a single scope token" });
const secret = z.string().min(1, { error: "must not be empty (is the $env variable it names set?)" });
const domain = (example: string) =>
  z.string().regex(/^[A-Za-z0-9.-]+(:\d+)?$/, { error: `must be a host name such as ${example} (no https://)` });

/** The gateway's own authorization server settings. */
export const gatewaySchema = z
  .object({
    /** Lifetime of access tokens issued to MCP clients (default 15 minutes). */
    accessTokenTtlSeconds: z.number().int().min(30).max(86_400).default(900),
    /** Lifetime of refresh tokens; each use rotates the token and renews it (default 30 days). */
    refreshTokenTtlSeconds: z.number().int().min(300).max(31_536_000).default(2_592_000),
    /** Accept https URL client ids (Client ID Metadata Documents). */
    cimdEnabled: z.boolean().default(true),
    /** Accept RFC 7591 dynamic client registration. */
    dcrEnabled: z.boolean().default(true),
    /** Dynamically registered clients unused this many days are forgotten. */
    unusedClientTtlDays: z.number().int().min(1).max(3650).default(30),
    /** How long a user may take to sign in and consent, seconds. */
    authorizationRequestTtlSeconds: z.number().int().min(60).max(3600).default(600),
    /** Scopes MCP clients may request (listed in the metadata). */
    scopesSupported: z.array(scopeToken).default(["mcp"]),
    /** Scopes a token must carry on the route (403 insufficient_scope otherwise). */
    requiredScopes: z.array(scopeToken).default([]),
  })
  .superRefine((g, ctx) => {
    g.requiredScopes.forEach((s, i) => {
      if (!g.scopesSupported.includes(s)) {
        ctx.addIssue({ code: "custom", path: ["requiredScopes", i], message: `"${s}" is not in scopesSupported` });
      }
    });
  });

const clientSchema = z.object({
  clientId: z.string().min(1).max(200),
  clientSecret: secret.optional(),
  clientName: z.string().max(200).optional(),
  redirectUris: z.array(z.string().min(1)).min(1),
});

/** Options every variant accepts besides its IdP settings. */
const common = {
  gateway: gatewaySchema.prefault({}),
  /** Pre-registered MCP clients. */
  clients: z.array(clientSchema).default([]),
  /** IdP claims copied into `request.user.data` (default email, name, groups, roles, …). */
  claims: z.array(z.string().min(1)).optional(),
};

/** `mcp-oauth-inbound`. */
export const mcpOAuthOptionsSchema = z
  .object({
    /** The organisation's IdP: its issuer and JWKS (to verify id_tokens). */
    oidc: z
      .object({
        issuer: z.string().min(1),
        jwksUrl: httpUrlSchema,
        /** When set, bearer JWTs the IdP minted for this audience are accepted on the route too. */
        audience: z.string().min(1).optional(),
      })
      .optional(),
    /** How browsers sign in at the IdP. */
    browserLogin: browserLoginSchema.optional(),
    ...common,
  })
  .superRefine((o, ctx) => {
    if (o.browserLogin && !o.oidc) {
      ctx.addIssue({
        code: "custom",
        path: ["oidc"],
        message: "browserLogin needs oidc { issuer, jwksUrl } to verify the identity provider's id_tokens",
      });
    }
  });

const withLogin = {
  clientId: secret,
  clientSecret: secret,
  /** Scopes asked of the IdP (default `openid profile email`). */
  scope: z.string().optional(),
  ...common,
};

export const auth0OptionsSchema = z.object({ auth0Domain: domain("my-tenant.us.auth0.com"), audience: z.string().optional(), ...withLogin });
export const oktaOptionsSchema = z.object({
  oktaDomain: domain("my-org.okta.com"),
  authorizationServerId: z.string().regex(/^[A-Za-z0-9_-]+$/).default("default"),
  ...withLogin,
});
export const keycloakOptionsSchema = z.object({ keycloakBaseUrl: httpUrlSchema, realm: z.string().min(1), ...withLogin });
export const entraOptionsSchema = z.object({
  /** The directory (tenant) id. Not a domain, not `common`: the id_token issuer names the tenant GUID. */
  tenantId: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, {
    error: "must be the directory (tenant) id, a GUID; multi-tenant names such as common are not supported",
  }),
  ...withLogin,
});
export const googleOptionsSchema = z.object({ ...withLogin });
export const oidcOptionsSchema = z.object({ issuer: httpUrlSchema, ...withLogin });

export type McpOAuthOptions = z.output<typeof mcpOAuthOptionsSchema>;
export type GatewayOptions = z.output<typeof gatewaySchema>;
type WithLogin = { clientId: string; clientSecret: string; scope?: string | undefined } & {
  gateway: GatewayOptions;
  clients: McpOAuthOptions["clients"];
  claims?: string[] | undefined;
};

/** IdP endpoints a preset knows without discovery. */
export interface IdpEndpoints {
  issuer: string;
  jwksUrl: string;
  authorizationUrl: string;
  tokenUrl: string;
  userinfoUrl?: string | undefined;
}

/** Builds the generic options from IdP endpoints and a preset's client settings. */
export function fromEndpoints(ep: IdpEndpoints, o: WithLogin, audience?: string): McpOAuthOptions {
  return {
    oidc: { issuer: ep.issuer, jwksUrl: ep.jwksUrl },
    browserLogin: browserLoginSchema.parse({
      url: ep.authorizationUrl,
      tokenUrl: ep.tokenUrl,
      clientId: o.clientId,
      clientSecret: o.clientSecret,
      ...(o.scope ? { scope: o.scope } : {}),
      ...(audience ? { audience } : {}),
      ...(ep.userinfoUrl ? { userinfoUrl: ep.userinfoUrl } : {}),
    }),
    gateway: o.gateway,
    clients: o.clients,
    claims: o.claims,
  };
}

const trim = (s: string) => s.replace(/\/+$/, "");

/** Auth0: issuer `https://<domain>/` (with the trailing slash). */
export function auth0Endpoints(o: z.output<typeof auth0OptionsSchema>): IdpEndpoints {
  const d = `https://${o.auth0Domain}`;
  return { issuer: `${d}/`, jwksUrl: `${d}/.well-known/jwks.json`, authorizationUrl: `${d}/authorize`, tokenUrl: `${d}/oauth/token` };
}

/** Okta custom authorization server (`default` unless named). */
export function oktaEndpoints(o: z.output<typeof oktaOptionsSchema>): IdpEndpoints {
  const i = `https://${o.oktaDomain}/oauth2/${o.authorizationServerId}`;
  return { issuer: i, jwksUrl: `${i}/v1/keys`, authorizationUrl: `${i}/v1/authorize`, tokenUrl: `${i}/v1/token` };
}

/** Keycloak realm. */
export function keycloakEndpoints(o: z.output<typeof keycloakOptionsSchema>): IdpEndpoints {
  const i = `${trim(o.keycloakBaseUrl)}/realms/${encodeURIComponent(o.realm)}`;
  const p = `${i}/protocol/openid-connect`;
  return { issuer: i, jwksUrl: `${p}/certs`, authorizationUrl: `${p}/auth`, tokenUrl: `${p}/token` };
}

/** Microsoft Entra ID (v2.0 endpoints of one tenant). */
export function entraEndpoints(o: z.output<typeof entraOptionsSchema>): IdpEndpoints {
  const b = `https://login.microsoftonline.com/${o.tenantId}`;
  return {
    issuer: `${b}/v2.0`,
    jwksUrl: `${b}/discovery/v2.0/keys`,
    authorizationUrl: `${b}/oauth2/v2.0/authorize`,
    tokenUrl: `${b}/oauth2/v2.0/token`,
  };
}

/** Google accounts. */
export function googleEndpoints(): IdpEndpoints {
  return {
    issuer: "https://accounts.google.com",
    jwksUrl: "https://www.googleapis.com/oauth2/v3/certs",
    authorizationUrl: "https://accounts.google.com/o/oauth2/v2/auth",
    tokenUrl: "https://oauth2.googleapis.com/token",
  };
}
