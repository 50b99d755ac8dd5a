// What a project module gets for `import … from "@zuplo/runtime/mcp-gateway"` (see ../runtime-init.ts).
// Plain CommonJS so that both `require` (project folders without "type": "module") and `import`
// load this one file, and so one class object exists per process.
"use strict";

const BRAND = Symbol.for("tollgate.McpGatewayPlugin");

/**
 * Activates the gateway's MCP endpoints (OAuth server, connections, registry). The options are
 * validated when `runtimeInit` returns; the constructor only records them.
 */
class McpGatewayPlugin {
  constructor(options) {
    this.options = options;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

module.exports = { McpGatewayPlugin, MCP_GATEWAY_PLUGIN_BRAND: BRAND };
