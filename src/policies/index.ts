/**
 * Loads every built-in module so its `registerBuiltin` call runs. Import this once before
 * loading a project. Each line is one `policyType` folder (or handler).
 */
import "../handlers/mcp-proxy/index.js";
import "./mcp-oauth-inbound/index.js";
import "./mcp-token-exchange-inbound/index.js";
