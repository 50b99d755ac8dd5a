/**
 * `open-id-jwt-auth-inbound` (and the `auth0-jwt-auth-inbound` preset): the gateway as an OAuth
 * resource server for bearer JWTs minted by any OpenID Connect provider.
 *
 * On success `request.user = { sub, data: claims }`. The token's header (`authHeader`) never
 * reaches the upstream (`context.consumeCredentialHeader`). A missing or bad token answers 401 with a
 * Bearer challenge; on MCP routes the challenge carries `resource_metadata`, pointing at the
 * RFC 9728 document this policy serves for each route that uses it.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750 Bearer Token Usage
 * @see https://www.rfc-editor.org/rfc/rfc9728 Protected Resource Metadata
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 */
import { GatewayError } from "../../errors.js";
import type { GatewayContext, PipelineRequest, InboundPolicy } from "../../pipeline/types.js";
import { registerBuiltin, RUNTIME_MODULE, type BuildInit, type BuiltinInbound } from "../registry.js";
import type { BrowserLoginOptions } from "../shared/browser-login.js";
import { setUpBrowserLogin } from "../shared/login-setup.js";
import { readCredential } from "../shared/credentials.js";
import { createJwtVerifier, type JwtVerifier } from "../shared/jwt-verifier.js";
import { bearerChallenge, registerProtectedResource, resourceMetadataUrl } from "../shared/protected-resource.js";
import { isInsecureRemote } from "../shared/urls.js";
import {
  auth0JwtOptionsSchema,
  auth0ToOpenId,
  openIdJwtOptionsSchema,
  type Auth0JwtOptions,
  type OpenIdJwtOptions,
} from "./options.js";

/** The built policy: a normal inbound policy plus what the browser login code reads. */
export interface JwtAuthPolicy extends InboundPolicy {
  /** The validated `browserLogin` block, when configured. */
  readonly browserLogin: BrowserLoginOptions | undefined;
  readonly issuer: string;
  readonly verifier: JwtVerifier;
}

/** Builds the policy once from validated options; registers its metadata documents. */
export function createOpenIdJwtPolicy(options: OpenIdJwtOptions, init: BuildInit): JwtAuthPolicy {
  const { services } = init;
  const log = services.log;
  const urls: Array<[string, string]> = [["jwkUrl", options.jwkUrl]];
  for (const [field, url] of urls) {
    if (!isInsecureRemote(url)) continue;
    const msg = `policy "${init.name}": ${field} uses plain http to a non-loopback host; it could be tampered with in transit`;
    if (services.settings.mode === "production") throw new Error(msg);
    log.warn({ policy: init.name }, msg);
  }
  if (options.audience === undefined) {
    log.warn(
      { policy: init.name },
      "no audience configured: any token from this issuer is accepted, including tokens minted for other APIs",
    );
  }
  const verifier = createJwtVerifier({
    issuer: options.issuer,
    audience: options.audience,
    jwkUrl: options.jwkUrl,
    subPropertyName: options.subPropertyName,
    jwksCooldownMs: options.jwksCooldownSeconds * 1000,
    now: () => services.now(),
  });
  registerProtectedResource(services, init.usedBy, {
    authorizationServers: [options.issuer],
    scopesSupported: options.scopesSupported,
  });
  if (options.browserLogin) {
    // The same IdP signs browsers in: its id_tokens are checked with this policy's issuer and keys.
    setUpBrowserLogin(services, init.name, options.browserLogin, { issuer: options.issuer, jwksUrl: options.jwkUrl });
  }
  const allowAnonymous = options.allowUnauthenticatedRequests;
  const authHeader = options.authHeader;
  const scope = options.scopesSupported?.join(" ");

  const challenge = (request: PipelineRequest, context: GatewayContext, error: "invalid_token" | undefined) => {
    const resourceMetadata = context.route.mcp
      ? resourceMetadataUrl(services.settings.publicUrl, new URL(request.url).pathname)
      : undefined;
    return new GatewayError(
      error ? "invalid_token" : "missing_token",
      401,
      error ? "The bearer token is invalid or expired." : "A bearer token is required.",
      { headers: { "www-authenticate": bearerChallenge({ error, resourceMetadata, scope }) } },
    );
  };

  // A token verified before answers synchronously (no promise, no microtask); everything else
  // — no token, a new token, a bad one — takes the asynchronous path.
  const policy = (request: PipelineRequest, context: GatewayContext): PipelineRequest | Promise<PipelineRequest> => {
    context.consumeCredentialHeader(authHeader);
    const token = readCredential(request.headers, authHeader, "Bearer");
    const hit = token === undefined ? undefined : verifier.cached(token);
    if (hit) {
      request.user = hit;
      return request;
    }
    return authenticate(request, context, token);
  };
  const authenticate = async (request: PipelineRequest, context: GatewayContext, token: string | undefined) => {
    if (token === undefined) {
      if (allowAnonymous) return request;
      throw challenge(request, context, undefined);
    }
    const result = await verifier.verify(token);
    if (result.ok) {
      request.user = result.user;
      return request;
    }
    if (result.reason === "unavailable") {
      log.error({ requestId: context.requestId, policy: init.name, reason: result.code }, "JWKS unavailable");
      throw new GatewayError("jwks_unavailable", 503, "The identity provider's signing keys could not be loaded.");
    }
    log.info({ requestId: context.requestId, policy: init.name, reason: result.code }, "bearer token rejected");
    if (allowAnonymous) return request;
    throw challenge(request, context, "invalid_token");
  };
  return Object.assign(policy, { browserLogin: options.browserLogin, issuer: options.issuer, verifier });
}

export const OpenIdJwtInboundPolicy: BuiltinInbound<OpenIdJwtOptions> = {
  kind: "inbound",
  exportName: "OpenIdJwtInboundPolicy",
  modules: [RUNTIME_MODULE],
  policyTypes: ["open-id-jwt-auth-inbound"],
  optionsSchema: openIdJwtOptionsSchema,
  mcpFeature: false,
  authenticates: true,
  create: (options, init) => createOpenIdJwtPolicy(options, init),
};

export const Auth0JwtInboundPolicy: BuiltinInbound<Auth0JwtOptions> = {
  kind: "inbound",
  exportName: "Auth0JwtInboundPolicy",
  modules: [RUNTIME_MODULE],
  policyTypes: ["auth0-jwt-auth-inbound"],
  optionsSchema: auth0JwtOptionsSchema,
  mcpFeature: false,
  authenticates: true,
  create: (options, init) => createOpenIdJwtPolicy(auth0ToOpenId(options), init),
};

registerBuiltin(OpenIdJwtInboundPolicy);
registerBuiltin(Auth0JwtInboundPolicy);
