/**
 * Options of `mcp-token-exchange-inbound` — the project format's schema, validated at start-up.
 */
import { z } from "zod";
import { CLIENT_ASSERTION_ALGS } from "../../oauth/client-auth.js";

/**
 * What `private_key_jwt` needs besides the client id: a PKCS#8 PEM key, the signature algorithm
 * (default RS256), the `kid` header, the assertion's audience (default the token endpoint URL)
 * and its lifetime.
 */
const assertionAlg = z.enum(CLIENT_ASSERTION_ALGS);
const assertionLifetime = z.number().int().min(1).max(3600);
const privateKeyJwtFields = {
  privateKeyPem: z.string().min(1, { error: "must not be empty (if it comes from $env(...), is the variable set?)" }),
  algorithm: assertionAlg.default("RS256"),
  keyId: z.string().min(1).optional(),
  audience: z.url().optional(),
  expiresInSeconds: assertionLifetime.default(300),
};

const secretMethod = z.enum(["client_secret_basic", "client_secret_post"]);

const KEY_FIELDS = ["privateKeyPem", "algorithm", "keyId", "audience", "expiresInSeconds"] as const;

/**
 * `clientRegistration: {mode: "manual"}`: a client registered by hand at the upstream's
 * authorization server. With a secret (`client_secret_basic`, the default with a secret, or
 * `client_secret_post`), without one (`none`), or — Tollgate — with a private key
 * (`private_key_jwt`, RFC 7523 client assertions, the fields of {@link privateKeyJwtFields}).
 */
const manualRegistration = z
  .strictObject({
    mode: z.literal("manual"),
    clientId: z.string().min(1),
    /** Usually `$env(...)`; an unset variable reads as undefined. */
    clientSecret: z.string().optional(),
    /** Default: `client_secret_basic` with a secret, `none` without. */
    tokenEndpointAuthMethod: z.enum(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]).optional(),
    privateKeyPem: z.string().optional(),
    algorithm: assertionAlg.optional(),
    keyId: privateKeyJwtFields.keyId,
    audience: privateKeyJwtFields.audience,
    expiresInSeconds: assertionLifetime.optional(),
  })
  .superRefine((m, ctx) => {
    const method = m.tokenEndpointAuthMethod ?? (m.clientSecret ? "client_secret_basic" : "none");
    if (method === "private_key_jwt") {
      if (!m.privateKeyPem) {
        ctx.addIssue({ code: "custom", path: ["privateKeyPem"], message: 'required for tokenEndpointAuthMethod "private_key_jwt" (if it comes from $env(...), is the variable set?)' });
      }
      if (m.clientSecret !== undefined) {
        ctx.addIssue({ code: "custom", path: ["clientSecret"], message: 'does not apply with tokenEndpointAuthMethod "private_key_jwt" (the private key authenticates the client)' });
      }
      return;
    }
    for (const k of KEY_FIELDS) {
      if (m[k] !== undefined) ctx.addIssue({ code: "custom", path: [k], message: 'applies only with tokenEndpointAuthMethod "private_key_jwt"' });
    }
    if (method !== "none" && !m.clientSecret) {
      ctx.addIssue({
        code: "custom",
        path: ["clientSecret"],
        message: `required for tokenEndpointAuthMethod "${method}" (if it comes from $env(...), is the variable set?)`,
      });
    }
  })
  .transform((m) => {
    const method = m.tokenEndpointAuthMethod ?? (m.clientSecret ? "client_secret_basic" : "none");
    if (method === "private_key_jwt") {
      return {
        mode: m.mode,
        clientId: m.clientId,
        tokenEndpointAuthMethod: method,
        privateKey: { privateKeyPem: m.privateKeyPem!, algorithm: m.algorithm ?? "RS256", keyId: m.keyId, audience: m.audience, expiresInSeconds: m.expiresInSeconds ?? 300 },
      };
    }
    return { mode: m.mode, clientId: m.clientId, clientSecret: m.clientSecret, tokenEndpointAuthMethod: method, privateKey: undefined };
  });

const clientAuth = z.discriminatedUnion("method", [
  z.strictObject({ method: secretMethod, clientId: z.string().min(1), clientSecret: z.string().min(1) }),
  z.strictObject({ method: z.literal("private_key_jwt"), clientId: z.string().min(1), ...privateKeyJwtFields }),
]);

/**
 * `idJag` of `authMode: "id-jag"` (cross-app access): the IdP's token endpoint (token exchange
 * for an ID-JAG) and the resource authorization server's (JWT bearer grant), each with its own
 * client authentication. `resourceAs.resource` defaults to the route's upstream URL.
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-identity-assertion-authz-grant/
 * @see ../../../docs/cross-app-access.md
 */
export const tokenExchangeIdJagSchema = z.strictObject({
  scopes: z.array(z.string().min(1)).default([]),
  scopeDelimiter: z.string().min(1).optional(),
  idp: z.strictObject({ tokenUrl: z.url(), clientAuth }),
  resourceAs: z.strictObject({ tokenUrl: z.url(), audience: z.string().min(1), clientAuth, resource: z.string().min(1).optional() }),
});

/** Options that only apply to the OAuth modes (forbidden with `id-jag`). */
const OAUTH_ONLY = ["scopes", "scopeDelimiter", "prompt", "clientRegistration"] as const;

/** `mcp-token-exchange-inbound` options. */
export const tokenExchangeOptionsSchema = z.object({
  /** Upstream id (URL segment of the connect pages, grant key). Default: policy name minus `mcp-token-exchange-`. */
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { message: "must be 1-64 of letters, digits, '.', '_' or '-'" })
    .optional(),
  /** Name shown to users ("Connect Linear to continue."). */
  displayName: z.string().min(1),
  summary: z.string().optional(),
  /** `user-oauth` (default): one grant per user. `shared-oauth`: one grant an administrator connects. */
  authMode: z.enum(["user-oauth", "shared-oauth", "id-jag"]).default("user-oauth"),
  /** Scopes to request; when empty, the challenge's, then PRM `scopes_supported`, then none. */
  scopes: z.array(z.string().min(1)).optional(),
  scopeDelimiter: z.string().min(1).optional(),
  /** `prompt` sent to the upstream authorization endpoint; false sends none. */
  prompt: z.union([z.enum(["none", "login", "consent", "select_account"]), z.literal(false)]).optional(),
  /** Where the upstream's protected resource metadata lives, when not at the derived URL. */
  protectedResourceMetadataUrl: z.url({ protocol: /^https?$/ }).optional(),
  clientRegistration: z.discriminatedUnion("mode", [z.strictObject({ mode: z.literal("auto") }), manualRegistration]).optional(),
  /** Cross-app access settings; required with `authMode: "id-jag"`, forbidden otherwise. */
  idJag: tokenExchangeIdJagSchema.optional(),
})
  .superRefine((o, ctx) => {
    if (o.authMode === "id-jag") {
      if (o.idJag === undefined) ctx.addIssue({ code: "custom", path: ["idJag"], message: 'is required with authMode "id-jag"' });
      for (const k of OAUTH_ONLY) {
        if (o[k] !== undefined) ctx.addIssue({ code: "custom", path: [k], message: 'does not apply with authMode "id-jag" (set it in idJag)' });
      }
    } else if (o.idJag !== undefined) {
      ctx.addIssue({ code: "custom", path: ["idJag"], message: `applies only with authMode "id-jag", not "${o.authMode}"` });
    }
  })
  .transform(({ idJag, ...o }) => {
    const base = {
      ...o,
      scopeDelimiter: o.scopeDelimiter ?? " ",
      clientRegistration: o.clientRegistration ?? { mode: "auto" as const },
    };
    if (o.authMode === "id-jag") {
      const j = idJag!;
      return { ...base, authMode: "id-jag" as const, idJag: { ...j, scopeDelimiter: j.scopeDelimiter ?? " " } };
    }
    return { ...base, authMode: o.authMode as "user-oauth" | "shared-oauth", idJag: undefined };
  });

export type TokenExchangeOptions = z.output<typeof tokenExchangeOptionsSchema>;
/** Options of an OAuth-mode (`user-oauth`, `shared-oauth`) upstream. */
export type OAuthTokenExchangeOptions = Extract<TokenExchangeOptions, { authMode: "user-oauth" | "shared-oauth" }>;
/** Options of an `id-jag` upstream. */
export type IdJagTokenExchangeOptions = Extract<TokenExchangeOptions, { authMode: "id-jag" }>;

/** The upstream id of a policy: `options.id`, else its name minus the `mcp-token-exchange-` prefix. */
export function upstreamIdOf(name: string, options: { id?: string | undefined }): string {
  return options.id ?? name.replace(/^mcp-token-exchange-/, "");
}
