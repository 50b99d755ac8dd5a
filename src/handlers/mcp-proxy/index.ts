/**
 * Registers `McpProxyHandler` under `@zuplo/runtime` and `@zuplo/runtime/mcp-gateway`.
 * See `handler.ts` for what it does and `docs/mcp-transport.md` for the behaviour in detail.
 */
import { MCP_GATEWAY_MODULE, registerBuiltin, RUNTIME_MODULE } from "../../policies/registry.js";
import { createMcpProxyHandler } from "./handler.js";
import { mcpProxyOptionsSchema, type McpProxyOptions } from "./options.js";

export { createMcpProxyHandler, type McpProxyHandler } from "./handler.js";
export { compileRewritePattern, type CompiledTarget } from "./target.js";
export { mcpProxyOptionsSchema, type McpProxyOptions } from "./options.js";

registerBuiltin({
  kind: "handler",
  exportName: "McpProxyHandler",
  modules: [RUNTIME_MODULE, MCP_GATEWAY_MODULE],
  mcp: true,
  mcpFeature: true,
  optionsSchema: mcpProxyOptionsSchema,
  create: (options: McpProxyOptions, init) => createMcpProxyHandler(options, init),
});
