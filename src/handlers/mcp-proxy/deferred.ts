/**
 * Starting the upstream session of a deferred session (one the gateway opened while the caller
 * had no grant, see `src/mcp/deferred-sessions.ts`): the client's own `initialize` is replayed
 * with the caller's credential, then `notifications/initialized` is sent, exactly as the client
 * would have done. The client keeps its session id; the proxy maps it to the upstream's.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#initialization
 */
import { GatewayError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { headerValue } from "./headers.js";
import { discard, type ExchangeOptions, type UpstreamResponse } from "./upstream.js";

const REPLAY_ID = "tollgate-deferred-initialize";
const MAX_ANSWER_BYTES = 1024 * 1024;
/** Request fields of the client's request that do not belong on the replayed handshake. */
const NOT_REPLAYED = ["mcp-session-id", "mcp-protocol-version", "last-event-id", "mcp-method", "mcp-name", "content-length"];

/** Sends one upstream request with the proxy's credential recovery; a Response answers the client instead. */
export type Send = (o: ExchangeOptions) => Promise<UpstreamResponse | Response>;

/** The client gets this answer instead (e.g. connect-required when the replay was refused). */
export class AnswerInstead extends Error {
  constructor(readonly response: Response) {
    super("answered by a credential policy");
  }
}

/** Reads the JSON-RPC answer with id `id` from a JSON or SSE body. */
async function answerOf(res: UpstreamResponse, id: string): Promise<Record<string, unknown> | undefined> {
  const length = Number(headerValue(res.headers, "content-length") ?? 0);
  if (length > MAX_ANSWER_BYTES) {
    discard(res);
    return undefined;
  }
  const text = await res.body.text();
  if (text.length > MAX_ANSWER_BYTES) return undefined;
  const candidates: string[] = [];
  if (headerValue(res.headers, "content-type")?.startsWith("text/event-stream")) {
    for (const event of text.split(/\r?\n\r?\n/)) {
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, ""))
        .join("\n");
      if (data) candidates.push(data);
    }
  } else candidates.push(text);
  for (const c of candidates) {
    try {
      const msg = JSON.parse(c) as Record<string, unknown>;
      if (msg && msg.id === id) return msg;
    } catch {
      // not JSON: keep looking
    }
  }
  return undefined;
}

/**
 * Replays `params` as `initialize` on `base` (a request already carrying the caller's
 * credential) and returns the upstream's session id ("" when it assigned none).
 */
export async function startUpstreamSession(base: ExchangeOptions, params: Record<string, unknown>, send: Send, log: Logger, clientVersion: string | undefined): Promise<string> {
  const headers: Record<string, string> = { ...base.headers, "content-type": "application/json", accept: "application/json, text/event-stream" };
  for (const h of NOT_REPLAYED) delete headers[h];
  const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", id: REPLAY_ID, method: "initialize", params }));
  const res = await send({ ...base, method: "POST", headers, body });
  if (res instanceof Response) throw new AnswerInstead(res);
  const sid = headerValue(res.headers, "mcp-session-id") ?? "";
  if (res.statusCode !== 200) {
    discard(res);
    throw new GatewayError("upstream_error", 502, "The upstream MCP server refused to start a session.");
  }
  const answer = await answerOf(res, REPLAY_ID);
  const result = answer?.result as { protocolVersion?: unknown } | undefined;
  if (!result) throw new GatewayError("upstream_error", 502, "The upstream MCP server refused to start a session.");
  const version = typeof result.protocolVersion === "string" ? result.protocolVersion : undefined;
  if (version !== clientVersion) {
    log.warn({ clientVersion, upstreamVersion: version }, "the upstream negotiated another protocol revision than the gateway's own handshake answer");
  }
  const notify: Record<string, string> = { ...headers };
  if (sid) notify["mcp-session-id"] = sid;
  if (version) notify["mcp-protocol-version"] = version;
  const done = await send({
    ...base,
    method: "POST",
    headers: notify,
    body: Buffer.from(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })),
  });
  if (done instanceof Response) throw new AnswerInstead(done);
  discard(done);
  return sid;
}
