/**
 * What the gateway answers by itself while a caller has no usable upstream grant, so that no
 * client is stranded at the handshake (see docs/mcp-transport.md, "Handshake without a grant"):
 *
 * - `initialize` (sessionful clients): an `InitializeResult` and a *deferred* session. The
 *   upstream session is started later, transparently, on the first request that carries a
 *   credential, by replaying the client's `initialize` (`deferred-sessions.ts`);
 * - `server/discover` (2026-07-28 clients): a `DiscoverResult`;
 * - `ping`: an empty result; notifications and responses: 202.
 *
 * Every other request needs the upstream and gets the connect-required answer.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#initialization
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/utilities/ping
 * @see https://modelcontextprotocol.io/specification/2026-07-28/basic/lifecycle
 */
import type { JsonRpcId } from "./messages.js";

/** Session protocol revisions the gateway can negotiate in its own `initialize` answer, newest first. */
export const SESSION_PROTOCOLS = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"] as const;

/**
 * Capabilities announced while the upstream's are unknown. `listChanged` lets the gateway tell
 * the client to list again once the user has connected (the lists were refused until then).
 */
export const PROVISIONAL_CAPABILITIES = {
  tools: { listChanged: true },
  prompts: { listChanged: true },
  resources: { listChanged: true },
} as const;

/** What the local answers say about the route. */
export interface HandshakeContext {
  /** The route's operationId (the server name the client shows). */
  serverName: string;
  /** Human text: which upstream is missing and where to connect it. */
  instructions: string;
}

/**
 * The protocol revision to answer: the client's when the gateway speaks it, else the newest
 * (the client then decides whether it can continue).
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#version-negotiation
 */
export function negotiateProtocol(requested: unknown): string {
  return typeof requested === "string" && (SESSION_PROTOCOLS as readonly string[]).includes(requested) ? requested : SESSION_PROTOCOLS[0];
}

/** The gateway's own `InitializeResult`. */
export function initializeResult(requestedVersion: unknown, h: HandshakeContext): Record<string, unknown> {
  return {
    protocolVersion: negotiateProtocol(requestedVersion),
    capabilities: PROVISIONAL_CAPABILITIES,
    serverInfo: { name: h.serverName, version: "tollgate" },
    instructions: h.instructions,
  };
}

/** The gateway's own `server/discover` result (2026-07-28). */
export function discoverResult(clientVersion: string, h: HandshakeContext): Record<string, unknown> {
  return { supportedVersions: [clientVersion], capabilities: PROVISIONAL_CAPABILITIES, instructions: h.instructions };
}

/** A JSON-RPC result message. */
export function rpcResult(id: JsonRpcId, result: Record<string, unknown>): Record<string, unknown> {
  return { jsonrpc: "2.0", id, result };
}

/** Methods the gateway answers itself when the caller has no grant (besides `initialize`). */
export const LOCAL_METHODS = new Set(["ping", "server/discover"]);
