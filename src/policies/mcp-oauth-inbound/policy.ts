/**
 * The MCP OAuth policy behind `mcp-oauth-inbound` and every IdP preset: the gateway as OAuth
 * authorization server and resource server for MCP clients, with browser sign-in delegated to
 * the organisation's OIDC IdP (or, on loopback, the dev login).
 *
 * The policy itself is the resource-server check: the request's bearer token must be one the
 * gateway issued, for this route (resource), unexpired and unrevoked, with the required scopes.
 * Then `request.user = { sub, data }` is the IdP identity captured at login.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1 Bearer error codes
 */
import { GatewayError } from "../../errors.js";
import type { GatewayContext, PipelineRequest, InboundPolicy, RouteConfig } from "../../pipeline/types.js";
import { addResource, ensureAuthServer } from "../../auth-server/server.js";
import { closeCimd } from "../../auth-server/cimd.js";
import { lookupAccessToken } from "../../auth-server/tokens.js";
import type { ResourceConfig, UpstreamInfo } from "../../auth-server/types.js";
import { createIdJagVerifier, resolveTrustedIssuers, type IdJagVerifier } from "../../auth-server/id-jag.js";
import { MCP_GATEWAY_MODULE, RUNTIME_MODULE, type BuildInit, type BuiltinInbound } from "../registry.js";
import { readCredential } from "../shared/credentials.js";
import { createJwtVerifier } from "../shared/jwt-verifier.js";
import { bearerChallenge, resourceMetadataUrl } from "../shared/protected-resource.js";
import { setUpBrowserLogin } from "../shared/login-setup.js";
import type { McpOAuthOptions } from "./options.js";
import { emitAudit } from "../../audit/audit.js";
import { AuditEvents, type AuditEvent } from "../../audit/events.js";
import { OBSERVATION, type ObservedContext } from "../../audit/observation.js";

const TOKEN_EXCHANGE = "mcp-token-exchange-inbound";
/** Access tokens remembered as already reported at `info` (per process; the oldest are forgotten first). */
const VALIDATED_MEMORY = 10_000;

/**
 * Reports `mcp_auth_downstream_token_validated`: at `info` the first time this process accepts
 * a token, at `debug` for every later request with it (built only when `debug` is on). A client
 * presents the same token for its whole lifetime, so the trail gets one line per token and
 * process, not one per request: the per-request record is `mcp_request_*`.
 */
function validationReporter(services: BuildInit["services"]) {
  const seen = new Set<string>();
  return (first: boolean | string, event: () => AuditEvent) => {
    if (typeof first === "string") {
      if (seen.has(first)) first = false;
      else {
        if (seen.size >= VALIDATED_MEMORY) seen.delete(seen.values().next().value!);
        seen.add(first);
        first = true;
      }
    }
    if (first) emitAudit(services, event());
    else if (services.log.isLevelEnabled("debug")) emitAudit(services, event(), "debug");
  };
}

/** The route's upstreams with OAuth (its `mcp-token-exchange-inbound` policies). */
function upstreamsOf(route: RouteConfig, init: BuildInit): UpstreamInfo[] {
  const out: UpstreamInfo[] = [];
  for (const name of route.policies.inbound) {
    const p = init.policies.find((x) => x.name === name && x.policyType === TOKEN_EXCHANGE);
    if (!p) continue;
    const o = p.handler.options as { id?: unknown; displayName?: unknown; authMode?: unknown };
    if (o.authMode === "id-jag") continue; // no connection to make: the IdP grants access
    out.push({
      id: typeof o.id === "string" ? o.id : name.replace(/^mcp-token-exchange-/, ""),
      displayName: typeof o.displayName === "string" ? o.displayName : name,
      authMode: o.authMode === "shared-oauth" ? "shared-oauth" : "user-oauth",
    });
  }
  return out;
}

/** The ID-JAG verifier of the policy when cross-app access (inbound) is enabled. */
async function idJagVerifierOf(options: McpOAuthOptions, init: BuildInit): Promise<IdJagVerifier | undefined> {
  const j = options.idJag;
  if (!j?.enabled) return undefined;
  const idp = options.oidc && !options.browserLogin?.dev ? { issuer: options.oidc.issuer, jwksUrl: options.oidc.jwksUrl } : undefined;
  let issuers;
  try {
    issuers = resolveTrustedIssuers(j, idp);
  } catch (err) {
    throw new Error(`policy "${init.name}": ${(err as Error).message}`);
  }
  const verifier = await createIdJagVerifier(init.services, issuers, { authorizationDetailsTypesAllowed: j.authorizationDetailsTypesAllowed, claims: options.claims });
  // Issuer URLs are configuration, not secrets, but they stay out of every published document.
  init.services.log.info({ policy: init.name, trustedIssuers: issuers.length }, "cross-app access (ID-JAG grants) enabled");
  return verifier;
}

/** Builds the policy from generic options (presets resolve to these first). */
export async function createMcpOAuthPolicy(options: McpOAuthOptions, init: BuildInit): Promise<InboundPolicy & { close(): Promise<void> }> {
  const { services } = init;
  const { settings, log } = services;
  const g = options.gateway;
  const where = `policy "${init.name}"`;

  if (options.browserLogin?.dev) {
    setUpBrowserLogin(services, init.name, options.browserLogin, { issuer: "", jwksUrl: "" });
  } else if (options.browserLogin && options.oidc) {
    setUpBrowserLogin(services, init.name, options.browserLogin, {
      issuer: options.oidc.issuer,
      jwksUrl: options.oidc.jwksUrl,
      claims: options.claims,
      expectedAudience: options.oidc.audience,
      idTokenOptional: options.idTokenOptional,
      authorizationParams: options.authorizationParams,
      reloginPrompt: options.reloginPrompt,
    });
  } else if (!settings.devLogin) {
    throw new Error(
      `${where}: no browser login is configured. Add browserLogin and oidc (or use a preset such as ` +
        `mcp-auth0-oauth-inbound), or set TOLLGATE_DEV_LOGIN=1 for the loopback-only dev login.`,
    );
  } else {
    log.warn({ policy: init.name }, "mcp-oauth-inbound signs browsers in with the loopback-only dev login (no IdP configured)");
  }

  const as = ensureAuthServer(services, {
    cimdEnabled: g.cimdEnabled,
    dcrEnabled: g.dcrEnabled,
    unusedClientTtlSeconds: g.unusedClientTtlDays * 86_400,
    pendingTtlSeconds: g.authorizationRequestTtlSeconds ?? options.browserLogin?.stateTtlSeconds ?? 900,
    clients: options.clients,
  });
  const idJag = await idJagVerifierOf(options, init);
  const byRoute = new Map<string, ResourceConfig>();
  for (const route of init.usedBy) {
    const rc: ResourceConfig = {
      route,
      policyName: init.name,
      accessTokenTtlSeconds: g.accessTokenTtlSeconds,
      refreshTokenTtlSeconds: g.refreshTokenTtlSeconds,
      scopesSupported: g.scopesSupported,
      requiredScopes: g.requiredScopes,
      upstreams: upstreamsOf(route, init),
      idJag,
    };
    byRoute.set(route.operationId, rc);
    addResource(as, rc);
  }

  const idpJwt =
    options.oidc?.bearerAudience !== undefined
      ? createJwtVerifier({ issuer: options.oidc.issuer, audience: options.oidc.bearerAudience, jwkUrl: options.oidc.jwksUrl, now: () => services.now() })
      : undefined;
  const requiredScope = g.requiredScopes.join(" ") || undefined;
  const validated = validationReporter(services);

  const challenge = (path: string, error: "invalid_token" | undefined) =>
    new GatewayError(
      error ? "invalid_token" : "missing_token",
      401,
      error ? "The access token is invalid, expired, revoked, or for another resource." : "An access token is required.",
      {
        headers: {
          "www-authenticate": bearerChallenge({
            error,
            scope: requiredScope,
            resourceMetadata: resourceMetadataUrl(settings.publicUrl, path),
          }),
        },
      },
    );

  /** Throws 403 insufficient_scope unless `granted` holds every scope the route requires. */
  const requireScopes = (path: string, granted: string[], context: GatewayContext) => {
    const rc = byRoute.get(context.route.operationId);
    const missing = (rc?.requiredScopes ?? g.requiredScopes).filter((s) => !granted.includes(s));
    if (missing.length) {
      throw new GatewayError("insufficient_scope", 403, "The access token lacks a scope this route requires.", {
        headers: {
          "www-authenticate": bearerChallenge({
            error: "insufficient_scope",
            scope: requiredScope,
            resourceMetadata: resourceMetadataUrl(settings.publicUrl, path),
          }),
        },
      });
    }
  };

  const policy = async (request: PipelineRequest, context: GatewayContext) => {
    const path = new URL(request.url).pathname;
    const token = readCredential(request.headers, "Authorization", "Bearer");
    if (token === undefined) throw challenge(path, undefined);
    if (idpJwt && !token.startsWith("tg") && token.split(".").length === 3) {
      const hit = idpJwt.cached(token);
      const r = hit ? { ok: true as const, user: hit } : await idpJwt.verify(token);
      if (!r.ok) throw challenge(path, "invalid_token");
      // The IdP's own access tokens must meet the route's scope requirement like ours do.
      requireScopes(path, jwtScopes(r.user.data), context);
      request.user = r.user;
      validated(!hit, () => {
        const d = r.user.data;
        const clientId = [d.client_id, d.azp].find((v) => typeof v === "string") as string | undefined;
        return { ...validatedBase(context, r.user.sub), tokenIssuer: "idp", clientId };
      });
      return request;
    }
    const rec = await lookupAccessToken(services, token);
    if (!rec || rec.resource !== `${settings.publicUrl}${path}`) {
      log.info({ requestId: context.requestId, policy: init.name, reason: rec ? "wrong_resource" : "unknown_token" }, "access token rejected");
      throw challenge(path, "invalid_token");
    }
    requireScopes(path, rec.scope.split(" "), context);
    request.user = { sub: rec.user.sub, data: { ...rec.user.data } };
    context.custom.oauthClientId = rec.clientId;
    // One access token: its grant and expiry (the token itself is never kept).
    validated(`${rec.grantId}:${rec.expiresAt}`, () => ({
      ...validatedBase(context, rec.user.sub),
      tokenIssuer: "gateway",
      clientId: rec.clientId,
      grantId: rec.grantId,
      scopes: rec.scope,
      expiresAt: new Date(rec.expiresAt).toISOString(),
    }));
    return request;
  };
  return Object.assign(policy, {
    async close() {
      await Promise.all([closeCimd(services), idJag?.close()]);
    },
  });
}

function validatedBase(context: GatewayContext, sub: string): AuditEvent {
  const obs = (context as ObservedContext)[OBSERVATION];
  return {
    event: AuditEvents.downstreamTokenValidated,
    operationId: context.route.operationId,
    subjectId: sub,
    requestId: context.requestId,
    traceId: obs?.traceId,
    spanId: obs?.spanId,
  };
}

/**
 * Scopes of a JWT access token: `scope` (RFC 9068, space-separated) and `scp` (a list or a
 * space-separated string, as Okta and Entra ID issue it).
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-2.2.3
 */
export function jwtScopes(claims: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const v of [claims.scope, claims.scp]) {
    if (typeof v === "string") out.push(...v.split(" ").filter(Boolean));
    else if (Array.isArray(v)) out.push(...v.filter((x): x is string => typeof x === "string"));
  }
  return out;
}

/**
 * A built-in MCP OAuth export: `policyType`, both module strings, the options schema and how its
 * options become the generic ones.
 */
export function oauthBuiltin<O>(
  exportName: string,
  policyType: string,
  schema: BuiltinInbound<O>["optionsSchema"],
  toGeneric: (o: O, init: BuildInit) => McpOAuthOptions | Promise<McpOAuthOptions>,
): BuiltinInbound<O> {
  return {
    kind: "inbound",
    exportName,
    modules: [MCP_GATEWAY_MODULE, RUNTIME_MODULE],
    policyTypes: [policyType],
    optionsSchema: schema,
    mcpFeature: true,
    authenticates: true,
    create: async (o, init) => createMcpOAuthPolicy(await toGeneric(o, init), init),
  };
}
