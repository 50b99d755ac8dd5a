/**
 * Reading MCP JSON-RPC traffic on the way through: the request's messages, its protocol
 * version and the client's declared capabilities. Parsed once per request and cached.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @see https://modelcontextprotocol.io/specification/2026-07-28/basic/index (`_meta` keys
 *   `io.modelcontextprotocol/protocolVersion` and `io.modelcontextprotocol/clientCapabilities`)
 */
import type { GatewayContext, PipelineRequest } from "../pipeline/types.js";

export type JsonRpcId = string | number | null;

export interface JsonRpcMessage {
  jsonrpc?: string;
  id?: JsonRpcId;
  method?: string;
  params?: Record<string, unknown> & { _meta?: Record<string, unknown> };
  result?: unknown;
  error?: unknown;
}

/** Newest protocol revision without sessions/initialize (stateless requests, MRTR). */
export const STATELESS_PROTOCOL = "2026-07-28";
/** Revision assumed when a request names none (spec default for HTTP without the header). */
export const DEFAULT_PROTOCOL = "2025-03-26";

export interface McpRequestInfo {
  /** Parsed messages (one element unless `batch`). Empty for GET/DELETE or unparseable bodies. */
  messages: JsonRpcMessage[];
  batch: boolean;
  /** False when the body was not valid JSON (the upstream gets it as is and answers). */
  parsed: boolean;
  /** From `MCP-Protocol-Version`, `_meta`, or initialize params; DEFAULT_PROTOCOL otherwise. */
  protocolVersion: string;
  /** Client capabilities when known (initialize params, `_meta`, or remembered per session). */
  clientCapabilities: Record<string, unknown> | undefined;
  /** The first request's id (for JSON-RPC error answers). */
  firstId: JsonRpcId | undefined;
}

const CACHE = Symbol.for("tollgate.mcpInfo");

/** Remembers what clients declared in `initialize`, per `Mcp-Session-Id` (bounded LRU). */
export class SessionCapabilities {
  private readonly map = new Map<string, { version: string; caps: Record<string, unknown> | undefined }>();
  constructor(private readonly max = 10_000) {}
  set(sessionId: string, version: string, caps: Record<string, unknown> | undefined): void {
    this.map.delete(sessionId);
    this.map.set(sessionId, { version, caps });
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
  get(sessionId: string) {
    return this.map.get(sessionId);
  }
  delete(sessionId: string): void {
    this.map.delete(sessionId);
  }
}

/** Process-wide session memory shared by the proxy and the policies. */
export const sessionCapabilities = new SessionCapabilities();

/**
 * Parses (once) the MCP messages of a request. Never throws: an unparseable body yields
 * `parsed: false` and is left for the upstream to reject.
 */
export async function mcpRequestInfo(request: PipelineRequest, context?: GatewayContext): Promise<McpRequestInfo> {
  const cached = (request as unknown as Record<symbol, McpRequestInfo>)[CACHE];
  if (cached) return cached;
  let messages: JsonRpcMessage[] = [];
  let batch = false;
  let parsed = true;
  if (request.method === "POST") {
    try {
      const bytes = await request.rawBytes();
      const json: unknown = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
      if (Array.isArray(json)) {
        batch = true;
        messages = json.filter((m): m is JsonRpcMessage => typeof m === "object" && m !== null);
      } else if (typeof json === "object" && json !== null) messages = [json as JsonRpcMessage];
      else parsed = false;
    } catch {
      parsed = false;
    }
  }
  const first = messages.find((m) => m.method !== undefined && m.id !== undefined);
  const meta = messages[0]?.params?._meta;
  const init = messages.find((m) => m.method === "initialize");
  const sessionId = request.headers.get("mcp-session-id");
  const remembered = sessionId ? sessionCapabilities.get(sessionId) : undefined;
  const metaVersion = meta?.["io.modelcontextprotocol/protocolVersion"] ?? meta?.protocolVersion;
  const protocolVersion =
    request.headers.get("mcp-protocol-version") ??
    (typeof metaVersion === "string" ? metaVersion : undefined) ??
    (typeof init?.params?.protocolVersion === "string" ? init.params.protocolVersion : undefined) ??
    remembered?.version ??
    DEFAULT_PROTOCOL;
  const metaCaps = meta?.["io.modelcontextprotocol/clientCapabilities"] ?? meta?.clientCapabilities;
  const clientCapabilities =
    (init?.params?.capabilities as Record<string, unknown> | undefined) ??
    (typeof metaCaps === "object" && metaCaps !== null ? (metaCaps as Record<string, unknown>) : undefined) ??
    remembered?.caps;
  const info: McpRequestInfo = {
    messages,
    batch,
    parsed,
    protocolVersion,
    clientCapabilities,
    firstId: first?.id,
  };
  (request as unknown as Record<symbol, McpRequestInfo>)[CACHE] = info;
  if (context && first) context.custom.rpcId = first.id;
  return info;
}

/** True when the request (by protocol version) is a 2026-07-28-style stateless request. */
export function isStatelessProtocol(version: string): boolean {
  return version >= STATELESS_PROTOCOL;
}

/** True when the client declared URL-mode elicitation support. */
export function supportsUrlElicitation(caps: Record<string, unknown> | undefined): boolean {
  const e = caps?.elicitation;
  return typeof e === "object" && e !== null && "url" in e;
}
