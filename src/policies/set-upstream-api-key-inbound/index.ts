/**
 * `set-upstream-api-key-inbound`: sends a static credential (an API key or a service token)
 * to the upstream, for upstreams that do not use OAuth. The value never reaches logs.
 */
import type { InboundPolicy } from "../../pipeline/types.js";
import { registerBuiltin, RUNTIME_MODULE, type BuiltinInbound } from "../registry.js";
import { setUpstreamHeader } from "../shared/headers.js";
import { setUpstreamApiKeyOptionsSchema, type SetUpstreamApiKeyOptions } from "./options.js";

/** Builds the policy from validated options. */
export function createSetUpstreamApiKeyPolicy(options: SetUpstreamApiKeyOptions): InboundPolicy {
  const { header, value, overwrite } = options;
  return (request, context) => {
    setUpstreamHeader(request, context, header, value, overwrite);
    return request;
  };
}

export const SetUpstreamApiKeyInboundPolicy: BuiltinInbound<SetUpstreamApiKeyOptions> = {
  kind: "inbound",
  exportName: "SetUpstreamApiKeyInboundPolicy",
  modules: [RUNTIME_MODULE],
  policyTypes: ["set-upstream-api-key-inbound"],
  optionsSchema: setUpstreamApiKeyOptionsSchema,
  mcpFeature: false,
  create: (options) => createSetUpstreamApiKeyPolicy(options),
};

registerBuiltin(SetUpstreamApiKeyInboundPolicy);
