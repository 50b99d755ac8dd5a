/**
 * `remove-headers-inbound`: drops headers from the request and from anything earlier policies
 * queued for the upstream.
 */
import type { InboundPolicy } from "../../pipeline/types.js";
import { registerBuiltin, RUNTIME_MODULE, type BuiltinInbound } from "../registry.js";
import { removeUpstreamHeader } from "../shared/headers.js";
import { removeHeadersOptionsSchema, type RemoveHeadersOptions } from "./options.js";

/** Builds the policy from validated options. */
export function createRemoveHeadersPolicy(options: RemoveHeadersOptions): InboundPolicy {
  const names = options.headers.map((h) => h.toLowerCase());
  return (request, context) => {
    for (const n of names) removeUpstreamHeader(request, context, n);
    return request;
  };
}

export const RemoveHeadersInboundPolicy: BuiltinInbound<RemoveHeadersOptions> = {
  kind: "inbound",
  exportName: "RemoveHeadersInboundPolicy",
  modules: [RUNTIME_MODULE],
  policyTypes: ["remove-headers-inbound"],
  optionsSchema: removeHeadersOptionsSchema,
  mcpFeature: false,
  create: (options) => createRemoveHeadersPolicy(options),
};

registerBuiltin(RemoveHeadersInboundPolicy);
