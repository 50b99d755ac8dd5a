/**
 * Loads every built-in module so its `registerBuiltin` call runs. Import this once before
 * loading a project. Each line is one `policyType` folder (or handler).
 */
import "../handlers/mcp-proxy/index.js";
import "./mcp-oauth-inbound/index.js";
import "./mcp-token-exchange-inbound/index.js";
import "./set-upstream-api-key-inbound/index.js";
import "./set-headers-inbound/index.js";
import "./remove-headers-inbound/index.js";
import "./open-id-jwt-auth-inbound/index.js";
import "./api-key-inbound/index.js";
import "./mcp-capability-filter-inbound/index.js";
import "./rate-limit-inbound/index.js";
