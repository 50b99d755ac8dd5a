/**
 * Rewriting upstream answers to list requests so hidden capabilities never reach the client,
 * for both answer shapes of Streamable HTTP: one JSON body, or an SSE stream whose events carry
 * JSON-RPC messages. SSE answers stream; only events are inspected until every list request of
 * the exchange has been answered.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#sending-messages-to-the-server
 */
import { pipeline, Readable } from "node:stream";
import zlib from "node:zlib";
import { GatewayError } from "../../errors.js";
import type { JsonRpcId } from "../../mcp/messages.js";
import { rewriteSse, sseEvent } from "../shared/sse.js";
import type { CapabilityFilter, ListKind } from "./filter.js";

/** Map key for a JSON-RPC id (1 and "1" are different ids). */
export function idKey(id: JsonRpcId): string {
  return `${typeof id}:${String(id)}`;
}

/** Rewrites one message if it answers a tracked list request; undefined when untouched. */
function rewriteMessage(msg: unknown, filter: CapabilityFilter, lists: Map<string, ListKind>): unknown {
  if (typeof msg !== "object" || msg === null || !("id" in msg) || !("result" in msg)) return undefined;
  const m = msg as { id: JsonRpcId; result: unknown };
  const key = idKey(m.id);
  const kind = lists.get(key);
  if (kind === undefined) return undefined;
  lists.delete(key);
  return { ...m, result: filter.rewriteList(kind, m.result) };
}

/** Rewrites a parsed JSON-RPC payload (one message or a batch); undefined when nothing changed. */
function rewritePayload(payload: unknown, filter: CapabilityFilter, lists: Map<string, ListKind>): unknown {
  if (Array.isArray(payload)) {
    let changed = false;
    const out = payload.map((m) => {
      const r = rewriteMessage(m, filter, lists);
      if (r === undefined) return m;
      changed = true;
      return r;
    });
    return changed ? out : undefined;
  }
  return rewriteMessage(payload, filter, lists);
}

function decodedBody(response: Response): ReadableStream<Uint8Array> | null {
  const encoding = (response.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  if (encoding === "identity" || encoding === "" || response.body === null) return response.body;
  const decoder =
    encoding === "gzip" || encoding === "x-gzip"
      ? zlib.createGunzip()
      : encoding === "deflate"
        ? zlib.createInflate()
        : encoding === "br"
          ? zlib.createBrotliDecompress()
          : undefined;
  if (!decoder) {
    // Fail closed: an answer we cannot read could list hidden capabilities.
    void response.body.cancel().catch(() => {});
    throw new GatewayError("unsupported_encoding", 502, "The upstream answered with an unsupported content encoding.");
  }
  pipeline(Readable.fromWeb(response.body as never), decoder, () => {});
  return Readable.toWeb(decoder) as unknown as ReadableStream<Uint8Array>;
}

function copyHeaders(response: Response): Headers {
  const headers = new Headers(response.headers);
  headers.delete("content-length");
  headers.delete("content-encoding");
  return headers;
}

/**
 * The answer the client gets: list results filtered, and `injected` error answers (for refused
 * members of a batch) added to it.
 */
export async function rewriteResponse(
  response: Response,
  filter: CapabilityFilter,
  lists: Map<string, ListKind>,
  injected: object[],
): Promise<Response> {
  if (response.status === 202 && injected.length) {
    await response.body?.cancel().catch(() => {});
    return Response.json(injected, { status: 200 });
  }
  if (response.status < 200 || response.status >= 300 || response.body === null) return response;
  const type = (response.headers.get("content-type") ?? "").toLowerCase();

  if (type.startsWith("text/event-stream")) {
    const body = rewriteSse(decodedBody(response)!, {
      onData(data) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(data);
        } catch {
          return undefined;
        }
        const out = rewritePayload(parsed, filter, lists);
        return out === undefined ? undefined : JSON.stringify(out);
      },
      active: () => lists.size > 0,
      prelude: injected.map((e) => sseEvent(JSON.stringify(e))).join(""),
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: copyHeaders(response) });
  }

  if (type.startsWith("application/json") || /^application\/[^;]*\+json/.test(type)) {
    const text = await new Response(decodedBody(response)).text();
    let out: unknown;
    try {
      out = JSON.parse(text);
    } catch {
      return new Response(text, { status: response.status, headers: copyHeaders(response) });
    }
    out = rewritePayload(out, filter, lists) ?? out;
    if (injected.length) out = [...(Array.isArray(out) ? out : [out]), ...injected];
    return new Response(JSON.stringify(out), { status: response.status, headers: copyHeaders(response) });
  }
  return response;
}
