/**
 * `mcp-capability-filter-inbound`: curates what an upstream MCP server exposes on a route.
 * Hidden tools, prompts, resources and resource templates disappear from list answers, and
 * calls to them are answered here with JSON-RPC -32601 without reaching the upstream.
 *
 * The filter changes what clients see; it is enforced for calls too, but resources reachable
 * through an unlisted template cannot be told apart from other URIs (see docs/policies.md).
 * With `accessControl`, each caller gets the view their roles, groups or a project function
 * allow (see `access.ts`).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/tools
 * @see https://www.jsonrpc.org/specification#error_object
 */
import { RpcCode } from "../../errors.js";
import { mcpRequestInfo, type JsonRpcId, type JsonRpcMessage } from "../../mcp/messages.js";
import { deriveRequest, type InboundPolicy, type PipelineRequest } from "../../pipeline/types.js";
import { MCP_GATEWAY_MODULE, registerBuiltin, RUNTIME_MODULE, type BuildInit, type BuiltinInbound } from "../registry.js";
import { setUpstreamHeader } from "../shared/headers.js";
import { addLoginClaims } from "../../web/session.js";
import { createAccess, type CapabilityResolver } from "./access.js";
import { LIST_METHODS, type ListKind } from "./filter.js";
import { capabilityFilterOptionsSchema, type CapabilityFilterOptions } from "./options.js";
import { idKey, rewriteResponse } from "./rewrite.js";

function methodNotFound(id: JsonRpcId) {
  return { jsonrpc: "2.0", id, error: { code: RpcCode.MethodNotFound, message: "Method not found" } };
}

/** Builds the policy from validated options. */
export function createCapabilityFilterPolicy(options: CapabilityFilterOptions, init: BuildInit, resolver?: CapabilityResolver): InboundPolicy {
  const access = createAccess(options, resolver);
  const ac = options.accessControl;
  if (ac.mode === "rolesAndGroups") {
    // Gateway tokens carry the claims captured at browser login: keep the ones the rule reads.
    addLoginClaims(init.services, [ac.roleClaim, ac.groupClaim].flatMap((c) => [c, c.split(".")[0]!]));
  }
  const encoder = new TextEncoder();

  return async (request, context) => {
    if (request.method !== "POST") return request;
    const info = await mcpRequestInfo(request, context);
    if (!info.parsed || info.messages.length === 0) return request;
    const view = access.filterFor(request, context);
    const filter = view instanceof Promise ? await view : view;

    const kept: JsonRpcMessage[] = [];
    const refused: object[] = [];
    const lists = new Map<string, ListKind>();
    let blocked = 0;
    for (const m of info.messages) {
      if (typeof m.method === "string" && filter.blocks(m)) {
        blocked++;
        if (m.id !== undefined) refused.push(methodNotFound(m.id));
        continue;
      }
      kept.push(m);
      const list = typeof m.method === "string" && m.id !== undefined ? LIST_METHODS.get(m.method) : undefined;
      if (list && filter.kinds[list.kind]) lists.set(idKey(m.id!), list.kind);
    }

    if (blocked) {
      context.log.info({ requestId: context.requestId, policy: init.name, refused: blocked }, "hidden capability requested");
    }
    if (kept.length === 0) {
      if (refused.length === 0) return new Response(null, { status: 202 });
      return Response.json(info.batch ? refused : refused[0], { status: 200 });
    }

    let out = request;
    if (blocked) {
      // Forward the rest of the batch; the refused members are answered in the response hook.
      const headers = new Headers(request.headers);
      headers.delete("content-length");
      out = deriveRequest(request, { headers, rawBody: encoder.encode(JSON.stringify(kept)) });
    }
    if (lists.size || refused.length) {
      // The answer must be readable to be filtered.
      if (lists.size) setUpstreamHeader(out, context, "accept-encoding", "identity", true);
      context.addResponseSendingHook((response) => rewriteResponse(response, filter, lists, refused));
    }
    return out;
  };
}

/** Resolvers of `function` mode, bound at project load to the validated options they belong to. */
const resolvers = new WeakMap<CapabilityFilterOptions, CapabilityResolver>();

export const McpCapabilityFilterInboundPolicy: BuiltinInbound<CapabilityFilterOptions> = {
  kind: "inbound",
  exportName: "McpCapabilityFilterInboundPolicy",
  modules: [MCP_GATEWAY_MODULE, RUNTIME_MODULE],
  policyTypes: ["mcp-capability-filter-inbound"],
  optionsSchema: capabilityFilterOptionsSchema,
  mcpFeature: true,
  moduleRefs: (options) => {
    const id = options.accessControl.identifier;
    if (options.accessControl.mode !== "function" || !id) return [];
    return [{ path: ["accessControl", "identifier"], module: id.module, export: id.export, bind: (fn) => resolvers.set(options, fn as CapabilityResolver) }];
  },
  create: (options, init) => createCapabilityFilterPolicy(options, init, resolvers.get(options)),
};

registerBuiltin(McpCapabilityFilterInboundPolicy);
