/**
 * `set-headers-inbound`: adds static headers to the upstream request (and to the request that
 * custom handlers see). Values are not logged.
 */
import type { InboundPolicy } from "../../pipeline/types.js";
import { registerBuiltin, RUNTIME_MODULE, type BuiltinInbound } from "../registry.js";
import { headerKey, setUpstreamField } from "../shared/headers.js";
import { setHeadersOptionsSchema, type SetHeadersOptions } from "./options.js";

/** Builds the policy from validated options. Headers are applied in the listed order. */
export function createSetHeadersPolicy(options: SetHeadersOptions): InboundPolicy {
  const headers = options.headers.map((h) => ({ key: headerKey(h.name), value: h.value, overwrite: h.overwrite }));
  return (request, context) => {
    for (const h of headers) setUpstreamField(request, context, h.key, h.value, h.overwrite);
    return request;
  };
}

export const SetHeadersInboundPolicy: BuiltinInbound<SetHeadersOptions> = {
  kind: "inbound",
  exportName: "SetHeadersInboundPolicy",
  modules: [RUNTIME_MODULE],
  policyTypes: ["set-headers-inbound"],
  optionsSchema: setHeadersOptionsSchema,
  mcpFeature: false,
  create: (options) => createSetHeadersPolicy(options),
};

registerBuiltin(SetHeadersInboundPolicy);
