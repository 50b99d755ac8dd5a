/**
 * Reading MCP JSON-RPC traffic on the way through: the request's messages, its protocol
 * version and the client's declared capabilities. Parsed once per request and cached.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @see https://modelcontextprotocol.io/specification/2026-07-28/basic/index (`_meta` keys
 *   `io.modelcontextprotocol/protocolVersion` and `io.modelcontextprotocol/clientCapabilities`)
 */
import { Buffer } from "node:buffer";
import { GatewayError, RpcCode } from "../errors.js";
import { MCP_INFO, type GatewayContext, type PipelineRequest } from "../pipeline/types.js";
import { scanRequest } from "./scan.js";

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
  /**
   * True when `messages` holds only what the audit trail and the proxy read of a single plain
   * request (`jsonrpc`, `id`, `method`, `params.name`, `params.uri`), taken by {@link scanRequest}
   * without building the rest; the other fields are the same as a full parse gives.
   * {@link mcpRequestInfo}, and {@link parseMcpRequestInfo} unless told a summary will do, parse
   * such a body in full.
   */
  partial: boolean;
}

/** Default of `TOLLGATE_MAX_BATCH_MESSAGES`: most messages in one JSON-RPC batch. */
export const DEFAULT_MAX_BATCH_MESSAGES = 100;
/** Default of `TOLLGATE_MAX_BATCH_BYTES`: largest JSON-RPC batch body (1 MiB). */
export const DEFAULT_MAX_BATCH_BYTES = 1024 * 1024;

/** The bounds a JSON-RPC batch must stay within (from the gateway settings). */
export interface BatchLimits {
  maxBatchMessages: number;
  maxBatchBytes: number;
}

const DEFAULT_LIMITS: BatchLimits = { maxBatchMessages: DEFAULT_MAX_BATCH_MESSAGES, maxBatchBytes: DEFAULT_MAX_BATCH_BYTES };

/** True when the body is a JSON array (a JSON-RPC batch): its first byte after whitespace is `[`. */
export function isBatchBody(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue;
    return b === 0x5b;
  }
  return false;
}

/**
 * A batch over the limits: JSON-RPC -32600 (Invalid Request, id null as for any invalid batch)
 * with HTTP 413, before any of its messages is answered by the gateway or forwarded.
 *
 * @see https://www.jsonrpc.org/specification#batch
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-15.5.14 413 Content Too Large
 */
function batchTooLarge(message: string, details: Record<string, number>): GatewayError {
  return new GatewayError("batch_too_large", 413, message, { rpcCode: RpcCode.InvalidRequest, rpcStatus: 413, details });
}

/**
 * Throws {@link batchTooLarge} when a batch body exceeds `maxBatchBytes` (checked before parsing)
 * or, once parsed, holds more than `maxBatchMessages` elements.
 */
function checkBatch(bytes: Uint8Array, parsed: unknown[] | undefined, limits: BatchLimits): void {
  if (parsed === undefined && bytes.byteLength > limits.maxBatchBytes) {
    throw batchTooLarge(`JSON-RPC batch too large: at most ${limits.maxBatchBytes} bytes per batch.`, {
      maxBatchBytes: limits.maxBatchBytes,
    });
  }
  if (parsed !== undefined && parsed.length > limits.maxBatchMessages) {
    throw batchTooLarge(`JSON-RPC batch too large: ${parsed.length} messages, at most ${limits.maxBatchMessages} per batch.`, {
      maxBatchMessages: limits.maxBatchMessages,
    });
  }
}

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

/** The request's messages when {@link mcpRequestInfo} has already parsed them (no microtask). */
export function cachedMcpRequestInfo(request: PipelineRequest): McpRequestInfo | undefined {
  return (request as unknown as Record<symbol, McpRequestInfo | undefined>)[MCP_INFO];
}

/**
 * Parses (once) the MCP messages of a request. An unparseable body yields `parsed: false` and is
 * left for the upstream to reject. Throws only for a batch beyond the limits of
 * `context.services.settings` (`maxBatchBytes`, `maxBatchMessages`): a `GatewayError`
 * answered as JSON-RPC -32600 with HTTP 413, so no policy answers (or forwards) its messages.
 */
export async function mcpRequestInfo(request: PipelineRequest, context?: GatewayContext): Promise<McpRequestInfo> {
  const cached = cachedMcpRequestInfo(request);
  if (cached !== undefined && !cached.partial) return cached;
  return parseMcpRequestInfo(request, request.method === "POST" ? await request.rawBytes() : undefined, context);
}

/**
 * {@link mcpRequestInfo} for a request whose body bytes are at hand (`bytes`; undefined for a
 * method without a JSON-RPC body): parses them now, without waiting. Caches like it. With
 * `summary`, a caller that reads no more than a message's `jsonrpc`, `id`, `method`,
 * `params.name` and `params.uri` accepts a {@link McpRequestInfo.partial} answer: a plain single
 * request is then read by {@link scanRequest} instead of being parsed whole.
 */
export function parseMcpRequestInfo(request: PipelineRequest, bytes: Uint8Array | undefined, context?: GatewayContext, summary = false): McpRequestInfo {
  const cached = cachedMcpRequestInfo(request);
  if (cached !== undefined && (summary || !cached.partial)) return cached;
  let messages: JsonRpcMessage[] = [];
  let batch = false;
  let parsed = true;
  let partial = false;
  if (request.method === "POST" && bytes !== undefined) {
    const limits = context?.services.settings ?? DEFAULT_LIMITS;
    const isBatch = isBatchBody(bytes);
    if (isBatch) checkBatch(bytes, undefined, limits);
    const m = summary && !isBatch ? scanRequest(bytes) : undefined;
    if (m !== undefined) {
      messages = [m];
      partial = true;
    } else {
      let json: unknown;
      try {
        json = JSON.parse((bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString());
      } catch {
        parsed = false;
      }
      if (Array.isArray(json)) {
        checkBatch(bytes, json, limits);
        batch = true;
        for (const m of json) if (typeof m === "object" && m !== null) messages.push(m as JsonRpcMessage);
      } else if (typeof json === "object" && json !== null) messages = [json as JsonRpcMessage];
      else parsed = false;
    }
  }
  let first: JsonRpcMessage | undefined;
  let init: JsonRpcMessage | undefined;
  for (const m of messages) {
    if (first === undefined && m.method !== undefined && m.id !== undefined) first = m;
    if (init === undefined && m.method === "initialize") init = m;
  }
  const meta = messages[0]?.params?._meta;
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
    partial,
  };
  (request as unknown as Record<symbol, McpRequestInfo>)[MCP_INFO] = info;
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
