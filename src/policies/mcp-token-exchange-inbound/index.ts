/**
 * Registers `McpTokenExchangeInboundPolicy` (policyType `mcp-token-exchange-inbound`) and builds
 * it: the upstream URL comes from the route's `McpProxyHandler` `rewritePattern`; discovery,
 * registration and grants live in `src/oauth/`; the browser pages in `src/web/connect/`.
 *
 * @see ../../../docs/upstream-oauth.md
 */
import { compileRewritePattern } from "../../handlers/mcp-proxy/target.js";
import { createGuardedFetch, isNonPublicTarget } from "../../oauth/ssrf.js";
import { callbackUrl, clientMetadataUrl, upstreamOAuthState, type UpstreamEntry } from "../../oauth/registry.js";
import { UpstreamOAuth } from "../../oauth/upstream.js";
import { clientAssertionSigner } from "../../oauth/client-auth.js";
import type { ClientRegistrationConfig } from "../../oauth/registration.js";
import { registerConnectRoutes } from "../../web/connect/index.js";
import { browserLoginAvailable } from "../../web/session.js";
import type { BuildInit } from "../registry.js";
import { MCP_GATEWAY_MODULE, registerBuiltin, RUNTIME_MODULE } from "../registry.js";
import { tokenExchangeOptionsSchema, upstreamIdOf, type OAuthTokenExchangeOptions, type TokenExchangeOptions } from "./options.js";
import { tokenExchangePolicy } from "./policy.js";
import { createIdJagExchange } from "./id-jag.js";

export { tokenExchangeOptionsSchema, upstreamIdOf, type TokenExchangeOptions } from "./options.js";

/** The upstream URL of the routes using the policy (their `rewritePattern`, `${env.X}` resolved). */
function upstreamUrlOf(init: BuildInit): URL {
  const urls = new Set<string>();
  for (const route of init.usedBy) {
    const pattern = route.handler.options.rewritePattern;
    if (route.handler.export !== "McpProxyHandler" || typeof pattern !== "string") {
      throw new Error(`policy "${init.name}": route ${route.operationId} must use McpProxyHandler with a rewritePattern`);
    }
    const target = compileRewritePattern(pattern, init.services.env);
    if (!target.staticUrl) {
      throw new Error(
        `policy "${init.name}": route ${route.operationId}'s rewritePattern depends on the request; upstream OAuth needs one fixed upstream URL`,
      );
    }
    urls.add(target.staticUrl);
  }
  if (urls.size !== 1) {
    throw new Error(`policy "${init.name}": all routes using it must proxy to the same upstream (found ${urls.size})`);
  }
  return new URL([...urls][0]!);
}

/**
 * The client registration of an OAuth-mode upstream; a manual `private_key_jwt` client's key is
 * imported here, so a key that does not parse stops start-up (naming the policy, not the key).
 */
async function registrationOf(reg: OAuthTokenExchangeOptions["clientRegistration"], where: string): Promise<ClientRegistrationConfig> {
  if (reg.mode === "auto") return reg;
  if (!reg.privateKey) return { mode: "manual", clientId: reg.clientId, clientSecret: reg.clientSecret, tokenEndpointAuthMethod: reg.tokenEndpointAuthMethod };
  try {
    const assertionSigner = await clientAssertionSigner(reg.privateKey);
    return { mode: "manual", clientId: reg.clientId, tokenEndpointAuthMethod: "private_key_jwt", assertionSigner };
  } catch (err) {
    throw new Error(`${where}: clientRegistration: ${(err as Error).message}`);
  }
}

/** Builds the policy once per gateway. */
export async function createTokenExchange(options: TokenExchangeOptions, init: BuildInit) {
  const { services } = init;
  const id = upstreamIdOf(init.name, options);
  const upstreamUrl = upstreamUrlOf(init);
  if (options.authMode === "id-jag") return createIdJagExchange(options, init, id, upstreamUrl);
  const registration = await registrationOf(options.clientRegistration, `policy "${init.name}"`);
  const fetch = createGuardedFetch({
    allowPrivate: await isNonPublicTarget(upstreamUrl),
    allowedHosts: services.settings.allowedUpstreamHosts.map((h) => h.toLowerCase()),
  });
  const https = services.settings.publicUrl.startsWith("https:");
  const oauth = new UpstreamOAuth(
    {
      id,
      displayName: options.displayName,
      upstreamUrl,
      prmOverride: options.protectedResourceMetadataUrl,
      scopes: options.scopes,
      scopeDelimiter: options.scopeDelimiter,
      prompt: options.prompt,
      registration,
      redirectUri: callbackUrl(services, id),
      clientMetadataUrl: https ? clientMetadataUrl(services, id, options.authMode) : undefined,
    },
    { store: services.store, secrets: services.secrets, log: services.log, fetch, now: () => services.now(), tracing: services.tracing },
  );
  const entry: UpstreamEntry = {
    id,
    displayName: options.displayName,
    summary: options.summary,
    authMode: options.authMode,
    oauth,
    operationIds: init.usedBy.map((r) => r.operationId),
  };
  upstreamOAuthState(services).upstreams.set(id, entry);
  registerConnectRoutes(services);
  // Browser logins are registered by authentication policies that may be built after this one.
  const warn = setImmediate(() => {
    if (!browserLoginAvailable(services) && options.authMode === "user-oauth") {
      services.log.warn(
        { upstream: id },
        "no browser login is configured (no IdP browserLogin, dev login off): connect links are bearer links — whoever opens one first can bind their upstream account; the connect page still asks for explicit confirmation",
      );
    }
  });
  services.log.info(
    { upstream: id, authMode: options.authMode, registration: options.clientRegistration.mode, callbackPath: new URL(callbackUrl(services, id)).pathname },
    "upstream OAuth configured",
  );
  const policy = tokenExchangePolicy(services, () => entry);
  return Object.assign(policy, {
    async close() {
      clearImmediate(warn);
      await fetch.close();
    },
  });
}

registerBuiltin({
  kind: "inbound",
  exportName: "McpTokenExchangeInboundPolicy",
  policyTypes: ["mcp-token-exchange-inbound"],
  modules: [MCP_GATEWAY_MODULE, RUNTIME_MODULE],
  mcpFeature: true,
  optionsSchema: tokenExchangeOptionsSchema,
  create: (options: TokenExchangeOptions, init) => createTokenExchange(options, init),
});
