/**
 * `rate-limit-inbound`: fixed-window request limits per user, per IP or per route, counted in
 * the store so every gateway instance on the same store enforces one limit.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6585#section-4 429 Too Many Requests
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3 Retry-After
 */
import { GatewayError } from "../../errors.js";
import type { GatewayContext, PipelineRequest, InboundPolicy } from "../../pipeline/types.js";
import { registerBuiltin, RUNTIME_MODULE, type BuildInit, type BuiltinInbound } from "../registry.js";
import { rateLimitOptionsSchema, type RateLimitOptions } from "./options.js";

/** Store namespace of the counters. */
export const RATE_LIMIT_NAMESPACE = "rate-limit";

/** `::ffff:1.2.3.4` and `1.2.3.4` are the same client. */
function normalizeIp(address: string | undefined): string {
  if (!address) return "unknown";
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/** Builds the policy from validated options. */
export function createRateLimitPolicy(options: RateLimitOptions, init: BuildInit): InboundPolicy {
  const { services } = init;
  const windowSeconds = options.timeWindowMinutes * 60;
  const limit = options.requestsAllowed;

  const bucketOf = (request: PipelineRequest, context: GatewayContext): string => {
    switch (options.rateLimitBy) {
      case "all":
        return `${init.name}|all`;
      case "ip":
        return `${init.name}|ip|${normalizeIp(context.clientAddress ?? context.remoteAddress)}`;
      case "user":
        return request.user
          ? `${init.name}|user|${request.user.sub}`
          : `${init.name}|anon-ip|${normalizeIp(context.clientAddress ?? context.remoteAddress)}`;
    }
  };

  return async (request, context) => {
    let counted: { value: number; resetAt: number };
    try {
      counted = await services.store.incr(RATE_LIMIT_NAMESPACE, bucketOf(request, context), windowSeconds);
    } catch (cause) {
      if (options.throwOnFailure) {
        throw new GatewayError("rate_limit_unavailable", 503, "Rate limits cannot be checked right now.", { cause });
      }
      services.log.warn({ err: cause, requestId: context.requestId, policy: init.name }, "rate limit store failed; request allowed");
      return request;
    }
    if (counted.value <= limit) return request;
    const retryAfter = Math.max(1, Math.ceil((counted.resetAt - services.now()) / 1000));
    throw new GatewayError("rate_limited", 429, "Too many requests; slow down and retry later.", {
      headers: options.headerMode === "retry-after" ? { "retry-after": String(retryAfter) } : {},
      details: options.headerMode === "retry-after" ? { retryAfterSeconds: retryAfter } : undefined,
    });
  };
}

export const RateLimitInboundPolicy: BuiltinInbound<RateLimitOptions> = {
  kind: "inbound",
  exportName: "RateLimitInboundPolicy",
  modules: [RUNTIME_MODULE],
  policyTypes: ["rate-limit-inbound"],
  optionsSchema: rateLimitOptionsSchema,
  mcpFeature: false,
  create: (options, init) => createRateLimitPolicy(options, init),
};

registerBuiltin(RateLimitInboundPolicy);
