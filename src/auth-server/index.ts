/**
 * The gateway's OAuth authorization server for MCP clients (see `server.ts` for the endpoint
 * list). Built by the `mcp-oauth-inbound` policy family.
 */
export { addResource, authServerMetadata, ensureAuthServer, getAuthServer, type AuthServer } from "./server.js";
export { trustClientMetadataCa } from "./cimd.js";
export { lookupAccessToken, revokeGrant } from "./tokens.js";
export type { AuthServerConfig, ResourceConfig, UpstreamInfo } from "./types.js";
