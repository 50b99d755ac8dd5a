/**
 * `mcp-token-exchange-inbound` with `authMode: "id-jag"` (cross-app access): the upstream token
 * comes from the user's IdP ID token, exchanged for an ID-JAG at the IdP and traded for an
 * access token at the resource's authorization server — no upstream consent, no stored grant.
 * A user without a usable ID token (never signed in through the IdP browser login, or it
 * expired) gets a connect-required answer whose link is the gateway's sign-in.
 *
 * @see ../../../docs/cross-app-access.md
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-identity-assertion-authz-grant/
 */
import { randomUUID } from "node:crypto";
import { GatewayError } from "../../errors.js";
import { mcpRequestInfo } from "../../mcp/messages.js";
import type { GatewayContext, InboundPolicy, PipelineRequest, UpstreamAuthHooks } from "../../pipeline/types.js";
import type { BuildInit } from "../registry.js";
import { createGuardedFetch, isNonPublicTarget } from "../../oauth/ssrf.js";
import { gatewayBase } from "../../oauth/registry.js";
import { IdJagClient, IdJagError } from "../../oauth/id-jag/exchange.js";
import { ID_TOKEN_NS, keepIdTokens, readIdToken } from "../../oauth/id-jag/id-tokens.js";
import { registerConnectRoutes } from "../../web/connect/index.js";
import { browserLoginConfig } from "../../web/session.js";
import { connectRequiredProblem, connectRequiredResponse, type ConnectRequired } from "./connect-required.js";
import type { IdJagTokenExchangeOptions } from "./options.js";

/** Builds an `id-jag` upstream policy for the routes proxying to `upstreamUrl`. */
export async function createIdJagExchange(options: IdJagTokenExchangeOptions, init: BuildInit, id: string, upstreamUrl: URL) {
  const { services } = init;
  const j = options.idJag;
  const endpoints = [j.idp.tokenUrl, j.resourceAs.tokenUrl].map((u) => new URL(u));
  // Both token endpoints are the administrator's configuration; private addresses are allowed
  // when the configuration names them, never reached through redirects elsewhere.
  const fetch = createGuardedFetch({
    allowPrivate: (await Promise.all(endpoints.map((u) => isNonPublicTarget(u)))).some(Boolean),
    allowedHosts: [...services.settings.allowedUpstreamHosts.map((h) => h.toLowerCase()), ...endpoints.map((u) => u.hostname.toLowerCase())],
  });
  const client = new IdJagClient(
    { ...j, resourceAs: { ...j.resourceAs, resource: j.resourceAs.resource ?? upstreamUrl.href } },
    { fetch, now: () => services.now() },
  );
  try {
    await client.init();
  } catch (err) {
    throw new Error(`policy "${init.name}": idJag: ${(err as Error).message}`);
  }
  keepIdTokens(services);
  // The sign-in link returns to the connections page.
  registerConnectRoutes(services);
  const warn = setImmediate(() => {
    if (!browserLoginConfig(services)) {
      services.log.warn({ upstream: id }, 'authMode "id-jag" needs an IdP browser login (browserLogin) on the MCP OAuth policy; every call will ask the user to sign in');
    }
  });
  services.log.info({ upstream: id, authMode: "id-jag", idp: j.idp.tokenUrl, resourceAs: j.resourceAs.tokenUrl }, "cross-app access upstream configured");

  async function signInRequired(request: PipelineRequest, context: GatewayContext): Promise<Response> {
    const base = services.settings.basePath;
    const c: ConnectRequired = {
      state: "authenticating",
      upstreamId: id,
      displayName: options.displayName,
      operationId: context.route.operationId,
      authMode: "id-jag",
      authUrl: `${gatewayBase(services)}/login?return_to=${encodeURIComponent(`${base}/connections`)}`,
      elicitationId: randomUUID(),
    };
    context.log.info({ requestId: context.requestId, upstream: id, state: c.state, route: c.operationId }, "sign-in required for cross-app access");
    if (request.method !== "POST") return connectRequiredProblem(c, context.requestId);
    return connectRequiredResponse(c, await mcpRequestInfo(request, context), request.headers.get("accept"));
  }

  /** A token for `sub`, or the answer to give instead. */
  async function obtain(sub: string, request: PipelineRequest, context: GatewayContext): Promise<string | Response> {
    try {
      const token = await client.token(sub, () => readIdToken(services, sub));
      return token ?? (await signInRequired(request, context));
    } catch (err) {
      if (!(err instanceof IdJagError)) throw err;
      context.log.warn({ requestId: context.requestId, upstream: id, at: err.at, error: err.oauthError }, "cross-app access token request refused");
      if (err.at === "idp" && err.oauthError === "invalid_grant") {
        // The IdP no longer accepts the ID token (revoked session, signing key rolled): sign in again.
        await services.store.delete(ID_TOKEN_NS, sub);
        return signInRequired(request, context);
      }
      if (err.oauthError === "invalid_grant" || err.oauthError === "access_denied" || err.oauthError === "invalid_target" || err.oauthError === "invalid_scope") {
        throw new GatewayError("upstream_access_denied", 403, `Your organisation's identity provider does not allow you to use ${options.displayName}.`, {
          details: { upstream: id, error: err.oauthError },
        });
      }
      throw new GatewayError("upstream_token_failed", 502, `No access token could be obtained for ${options.displayName}.`, { details: { upstream: id } });
    }
  }

  const policy: InboundPolicy = async function idJagExchange(request, context) {
    const sub = request.user?.sub;
    if (!sub) throw new GatewayError("authentication_required", 401, "This route needs an authenticated caller to act on their behalf upstream.");
    const got = await obtain(sub, request, context);
    if (got instanceof Response) return got;
    let current = got;
    context.upstreamHeaders.authorization = `Bearer ${current}`;
    const hooks: UpstreamAuthHooks = {
      async onUnauthorized(challenge) {
        // The cached token was revoked or expired early: one fresh exchange, one retry.
        if (challenge.retried) return undefined;
        client.forget(sub, current);
        const fresh = await obtain(sub, request, context);
        if (fresh instanceof Response) return fresh;
        current = fresh;
        return `Bearer ${fresh}`;
      },
    };
    context.upstreamAuth = hooks;
    return request;
  };
  return Object.assign(policy, {
    async close() {
      clearImmediate(warn);
      await fetch.close();
    },
  });
}
