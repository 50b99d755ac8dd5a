/**
 * Options of `mcp-token-exchange-inbound` — the project format's schema, validated at start-up.
 */
import { z } from "zod";

const authMethod = z.enum(["client_secret_basic", "client_secret_post", "none"]);

const manualRegistration = z
  .object({
    mode: z.literal("manual"),
    clientId: z.string().min(1),
    /** Usually `$env(...)`; an unset variable reads as undefined. */
    clientSecret: z.string().optional(),
    /** Default: `client_secret_basic` with a secret, `none` without. */
    tokenEndpointAuthMethod: authMethod.optional(),
  })
  .transform((m) => ({
    ...m,
    tokenEndpointAuthMethod: m.tokenEndpointAuthMethod ?? (m.clientSecret ? "client_secret_basic" : "none"),
  }))
  .superRefine((m, ctx) => {
    if (m.tokenEndpointAuthMethod !== "none" && !m.clientSecret) {
      ctx.addIssue({
        code: "custom",
        path: ["clientSecret"],
        message: `required for tokenEndpointAuthMethod "${m.tokenEndpointAuthMethod}" (if it comes from $env(...), is the variable set?)`,
      });
    }
  });

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
  /** `user-oauth`: one grant per user. `shared-oauth`: one grant an administrator connects. */
  authMode: z.enum(["user-oauth", "shared-oauth"]),
  /** Scopes to request; when empty, the challenge's, then PRM `scopes_supported`, then none. */
  scopes: z.array(z.string().min(1)).optional(),
  scopeDelimiter: z.string().min(1).default(" "),
  /** `prompt` sent to the upstream authorization endpoint; false sends none. */
  prompt: z.union([z.enum(["none", "login", "consent", "select_account"]), z.literal(false)]).optional(),
  /** Where the upstream's protected resource metadata lives, when not at the derived URL. */
  protectedResourceMetadataUrl: z.url({ protocol: /^https?$/ }).optional(),
  clientRegistration: z
    .union([z.object({ mode: z.literal("auto") }), manualRegistration])
    .default({ mode: "auto" }),
});

export type TokenExchangeOptions = z.output<typeof tokenExchangeOptionsSchema>;

/** The upstream id of a policy: `options.id`, else its name minus the `mcp-token-exchange-` prefix. */
export function upstreamIdOf(name: string, options: { id?: string | undefined }): string {
  return options.id ?? name.replace(/^mcp-token-exchange-/, "");
}
