/**
 * The answer a client gets when the caller has no usable grant for the upstream, shaped for the
 * client's protocol generation:
 *
 * - 2025-11-25 and earlier: JSON-RPC error `-32042` (URL elicitation required) whose `data`
 *   carries the connect URL and state; the URL is also in `message`, for every client: many
 *   show the error text but not the elicitation data, and a human must always see the link;
 * - 2026-07-28: an `InputRequiredResult` with a URL-mode `elicitation/create` input request on the
 *   requests that allow one (`tools/call`, `prompts/get`, `resources/read`) when the client
 *   declared URL elicitation; otherwise the `-32042` error as above.
 *
 * Notifications get no answer (202); batches get one answer per request; SSE when the client
 * prefers (or only accepts) `text/event-stream`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation#url-elicitation-required-error
 * @see https://modelcontextprotocol.io/specification/draft/basic/patterns/mrtr
 */
import { RpcCode } from "../../errors.js";
import {
  isStatelessProtocol,
  supportsUrlElicitation,
  type JsonRpcId,
  type JsonRpcMessage,
  type McpRequestInfo,
} from "../../mcp/messages.js";

export type ConnectState = "authenticating" | "reconsent_required" | "admin_connect_required";

/** Everything a connect-required answer says. */
export interface ConnectRequired {
  state: ConnectState;
  upstreamId: string;
  displayName: string;
  operationId: string;
  /** `id-jag`: the URL is the gateway's sign-in (the IdP ID token is missing or expired). */
  authMode: "user-oauth" | "shared-oauth" | "id-jag";
  /** The connect URL; undefined for `admin_connect_required`. */
  authUrl: string | undefined;
  elicitationId: string;
}

/** Methods on which a 2026-07-28 server may answer `InputRequiredResult`. */
const MRTR_METHODS = new Set(["tools/call", "prompts/get", "resources/read"]);

/** Prefix of the gateway's own `requestState` values (stripped before forwarding a retry). */
export const REQUEST_STATE_PREFIX = "tollgate-connect.";

/** Key of the gateway's input request in `inputRequests`. */
export function inputRequestKey(upstreamId: string): string {
  return `tollgate_connect_${upstreamId}`;
}

/** The human message for a state. */
export function connectMessage(c: Pick<ConnectRequired, "state" | "displayName"> & { authMode?: ConnectRequired["authMode"] }): string {
  if (c.authMode === "id-jag") return `Sign in to the gateway again to use ${c.displayName}.`;
  switch (c.state) {
    case "reconsent_required":
      return `Your ${c.displayName} connection has expired or was revoked. Connect ${c.displayName} again to continue.`;
    case "admin_connect_required":
      return `${c.displayName} has not been connected for this gateway yet. Ask an administrator to connect it.`;
    default:
      return `Connect ${c.displayName} to continue.`;
  }
}

/** The `data` of the -32042 error (the hosted product's shape). */
export function connectErrorData(c: ConnectRequired): Record<string, unknown> {
  return {
    state: c.state,
    upstreamServerId: c.upstreamId,
    operationId: c.operationId,
    ...(c.authUrl ? { authUrl: c.authUrl } : {}),
    nextAction: c.authUrl ? "redirect" : "contact_admin",
    authProfileId: `${c.upstreamId}:${c.authMode}`,
    elicitations: c.authUrl
      ? [{ mode: "url", elicitationId: c.elicitationId, url: c.authUrl, message: connectMessage(c) }]
      : [],
  };
}

/** One JSON-RPC answer for request `id`. */
export function connectAnswer(
  c: ConnectRequired,
  msg: { id: JsonRpcId; method?: string | undefined },
  client: { protocolVersion: string; capabilities: Record<string, unknown> | undefined },
): Record<string, unknown> {
  const urlCapable = supportsUrlElicitation(client.capabilities);
  const message = connectMessage(c);
  if (c.authUrl && urlCapable && isStatelessProtocol(client.protocolVersion) && msg.method && MRTR_METHODS.has(msg.method)) {
    return {
      jsonrpc: "2.0",
      id: msg.id,
      result: {
        resultType: "input_required",
        inputRequests: {
          [inputRequestKey(c.upstreamId)]: {
            method: "elicitation/create",
            params: { mode: "url", elicitationId: c.elicitationId, url: c.authUrl, message },
          },
        },
        requestState: `${REQUEST_STATE_PREFIX}${c.elicitationId}`,
      },
    };
  }
  const shown = c.authUrl ? `${message} Open this link: ${c.authUrl}` : message;
  return { jsonrpc: "2.0", id: msg.id, error: { code: RpcCode.UrlElicitationRequired, message: shown, data: connectErrorData(c) } };
}

function qualityOf(accept: string, matches: (type: string) => boolean): number {
  let best = 0;
  for (const part of accept.split(",")) {
    const [type, ...params] = part.trim().toLowerCase().split(";");
    if (!type || !matches(type.trim())) continue;
    let q = 1;
    for (const p of params) {
      const [k, v] = p.trim().split("=");
      if (k === "q" && v !== undefined) q = Number(v);
    }
    if (Number.isFinite(q)) best = Math.max(best, q);
  }
  return best;
}

/** True when the answer should be an SSE stream: the client prefers or only accepts `text/event-stream`. */
export function prefersSse(accept: string | null): boolean {
  if (!accept) return false;
  const sse = qualityOf(accept, (t) => t === "text/event-stream" || t === "text/*");
  const json = qualityOf(accept, (t) => t === "application/json" || t === "application/*" || t === "*/*");
  return sse > json;
}

/** True for a JSON-RPC request (method and id), as opposed to a notification or response. */
export function isRequest(m: JsonRpcMessage): boolean {
  return typeof m.method === "string" && m.id !== undefined && m.id !== null;
}

/**
 * The HTTP answer carrying JSON-RPC `answers` (an array when the request was a batch), as JSON or
 * as one SSE event per answer; 202 when there is nothing to answer (notifications, responses).
 */
export function rpcAnswersResponse(answers: Array<Record<string, unknown>>, batch: boolean, accept: string | null, extra?: Record<string, string>): Response {
  if (answers.length === 0) return new Response(null, { status: 202 });
  const headers = new Headers({ "cache-control": "no-store", ...extra });
  if (prefersSse(accept)) {
    headers.set("content-type", "text/event-stream");
    const body = answers.map((a) => `event: message\ndata: ${JSON.stringify(a)}\n\n`).join("");
    return new Response(body, { status: 200, headers });
  }
  headers.set("content-type", "application/json");
  return new Response(JSON.stringify(batch ? answers : answers[0]), { status: 200, headers });
}

/**
 * Builds the HTTP answer for a POST whose requests all need the connection: 202 for
 * notifications/responses only; otherwise one answer per request (an array for batches).
 */
export function connectRequiredResponse(c: ConnectRequired, info: McpRequestInfo, accept: string | null): Response {
  const client = { protocolVersion: info.protocolVersion, capabilities: info.clientCapabilities };
  const requests = info.parsed ? info.messages.filter(isRequest) : [];
  if (info.parsed && requests.length === 0) return new Response(null, { status: 202 });
  const answers = info.parsed ? requests.map((m) => connectAnswer(c, { id: m.id!, method: m.method }, client)) : [connectAnswer(c, { id: null }, client)];
  return rpcAnswersResponse(answers, info.batch, accept);
}

/** The answer for GET/DELETE (no JSON-RPC to answer): a problem+json 403 naming the connect URL. */
export function connectRequiredProblem(c: ConnectRequired, requestId: string): Response {
  const body = {
    type: "urn:tollgate:error:upstream_connect_required",
    title: "Forbidden",
    status: 403,
    detail: connectMessage(c),
    code: "upstream_connect_required",
    instance: requestId,
    ...connectErrorData(c),
  };
  return new Response(JSON.stringify(body), {
    status: 403,
    headers: { "content-type": "application/problem+json", "cache-control": "no-store" },
  });
}
