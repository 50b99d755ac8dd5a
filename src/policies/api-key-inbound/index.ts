/**
 * `api-key-inbound`: authenticates callers (agents, CI jobs) by API key.
 *
 * The key is read from `Authorization: Bearer <key>` by default (`authHeader`/`authScheme`
 * change that, e.g. `x-api-key` with an empty scheme). Consumers come from the policy options
 * and from the store (see `consumers.ts`); both are matched by SHA-256 hash, config keys in
 * constant time. On success `request.user = { sub: consumer name, data: metadata }`. The key's
 * header never reaches the upstream (`context.consumeCredentialHeader`), valid or not.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1 Authorization request header field
 */
import { timingSafeEqual } from "node:crypto";
import { GatewayError } from "../../errors.js";
import type { GatewayContext, PipelineRequest, InboundPolicy, UserInfo } from "../../pipeline/types.js";
import { registerBuiltin, RUNTIME_MODULE, type BuildInit, type BuiltinInbound } from "../registry.js";
import { readCredential } from "../shared/credentials.js";
import { TtlLru } from "../shared/lru.js";
import { API_KEY_NAMESPACE, hashApiKey, type StoredConsumer } from "./consumers.js";
import { apiKeyOptionsSchema, type ApiKeyOptions } from "./options.js";

/** Unknown keys are remembered for at most this long, so a newly added consumer works quickly. */
const NEGATIVE_CACHE_MAX_SECONDS = 5;

function toUser(name: string, metadata: Record<string, unknown> | undefined, roles: string[] | undefined): UserInfo {
  const data: Record<string, unknown> = { ...metadata };
  if (roles) data.roles = [...roles];
  return { sub: name, data };
}

/** Builds the policy from validated options. */
export function createApiKeyPolicy(options: ApiKeyOptions, init: BuildInit): InboundPolicy {
  const { services } = init;
  const configured = (options.consumers ?? []).map((c) => ({
    hash: Buffer.from(hashApiKey(c.key), "hex"),
    name: c.name,
    metadata: c.metadata,
    roles: c.roles,
  }));
  const ttlMs = options.cacheTtlSeconds * 1000;
  const negativeMs = Math.min(options.cacheTtlSeconds, NEGATIVE_CACHE_MAX_SECONDS) * 1000;
  const cache = new TtlLru<StoredConsumer | null>(10_000);
  const scheme = options.authScheme;

  const reject = (missing: boolean) => {
    const headers: Record<string, string> = {};
    if (scheme) headers["www-authenticate"] = missing ? scheme : `${scheme} error="invalid_token"`;
    return new GatewayError(
      missing ? "missing_api_key" : "invalid_api_key",
      401,
      missing ? "An API key is required." : "The API key is not valid.",
      { headers },
    );
  };

  async function lookup(hex: string): Promise<StoredConsumer | null> {
    const now = services.now();
    const hit = cache.get(hex, now);
    if (hit !== undefined) return hit;
    let found: StoredConsumer | null;
    try {
      found = (await services.store.get<StoredConsumer>(API_KEY_NAMESPACE, hex))?.value ?? null;
    } catch (cause) {
      throw new GatewayError("store_unavailable", 503, "Credentials cannot be checked right now.", { cause });
    }
    const ms = found ? ttlMs : negativeMs;
    if (ms > 0) cache.set(hex, found, now + ms);
    return found;
  }

  return async (request: PipelineRequest, context: GatewayContext) => {
    context.consumeCredentialHeader(options.authHeader);
    const key = readCredential(request.headers, options.authHeader, scheme);
    if (key === undefined) {
      if (options.allowUnauthenticatedRequests) return request;
      throw reject(true);
    }
    const hex = hashApiKey(key);
    const digest = Buffer.from(hex, "hex");
    let match: (typeof configured)[number] | undefined;
    // Compare against every configured key so timing does not reveal which one matched.
    for (const c of configured) if (timingSafeEqual(c.hash, digest)) match = c;
    if (match) {
      request.user = toUser(match.name, match.metadata, match.roles);
      return request;
    }
    const stored = await lookup(hex);
    if (stored) {
      request.user = toUser(stored.name, stored.metadata, stored.roles);
      return request;
    }
    services.log.info({ requestId: context.requestId, policy: init.name }, "API key rejected");
    if (options.allowUnauthenticatedRequests) return request;
    throw reject(false);
  };
}

export const ApiKeyInboundPolicy: BuiltinInbound<ApiKeyOptions> = {
  kind: "inbound",
  exportName: "ApiKeyInboundPolicy",
  modules: [RUNTIME_MODULE],
  policyTypes: ["api-key-inbound"],
  optionsSchema: apiKeyOptionsSchema,
  mcpFeature: false,
  authenticates: true,
  create: (options, init) => createApiKeyPolicy(options, init),
};

registerBuiltin(ApiKeyInboundPolicy);
