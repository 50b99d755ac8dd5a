/**
 * What one MCP request did, gathered on its way through the gateway and written as audit events
 * once its answer is complete: `mcp_capability_invoked` / `mcp_capability_completed` per
 * capability call (each message of a batch or SSE answer on its own) and one
 * `mcp_request_accepted` (the upstream was asked) or `mcp_request_rejected` (the gateway
 * answered alone) per HTTP request.
 *
 * The gateway starts an observation for every request on an MCP route; the proxy handler reports
 * its upstream exchange and hands over the upstream body, whose JSON-RPC answers are read as
 * they pass (`rpc-tap.ts`). Arguments and results are never copied into an event.
 */
import type { Readable } from "node:stream";
import { GatewayError } from "../errors.js";
import { mcpRequestInfo, type JsonRpcId, type JsonRpcMessage } from "../mcp/messages.js";
import { IncomingRequest, type PipelineRequest, type UserInfo } from "../pipeline/types.js";
import { logAccess } from "../log.js";
import type { Audit } from "./audit.js";
import { AuditEvents, type AuditEvent, type FailureOrigin, type Outcome } from "./events.js";
import type { McpMetrics } from "./metrics.js";
import { RpcTap, tapNodeBody } from "./rpc-tap.js";

/** Methods whose messages are capability calls, with the param that names the capability. */
const CAPABILITY_PARAM: Record<string, string> = { "tools/call": "name", "prompts/get": "name", "resources/read": "uri" };
const LISTS: Record<string, { kind: "tool" | "prompt"; field: string }> = {
  "tools/list": { kind: "tool", field: "tools" },
  "prompts/list": { kind: "prompt", field: "prompts" },
};
const TRANSPORT = "streamable-http";
const round = (ms: number) => Math.round(ms * 100) / 100;
const idKey = (id: JsonRpcId | undefined) => (typeof id === "string" ? `s${id}` : `n${String(id)}`);

interface Verdict {
  outcome: Outcome;
  reasonCode?: string | undefined;
  failureOrigin?: FailureOrigin | undefined;
  errorCode?: number | undefined;
}

interface Pending {
  msg: JsonRpcMessage;
  capability: string | undefined;
  verdict: Verdict | undefined;
  at: number;
}

/** Shared by all observations of one gateway. */
export interface ObservationDeps {
  audit: Audit;
  metrics: McpMetrics | undefined;
  /** Upstream id of a route (token-exchange upstream), else the operationId. */
  upstreamOf(operationId: string): string;
}

/** What every event of one request shares. */
interface EventBase {
  operationId: string;
  upstreamServerId: string;
  subjectId: string | undefined;
  clientName: string | undefined;
  httpMethod: string;
  requestId: string;
  traceId: string | undefined;
  spanId: string | undefined;
  path: string;
}

/**
 * One request-level event, always with the same fields in the same order (absent ones
 * `undefined`, which the log line and JSON leave out). Built as one literal rather than by
 * spreading a shared base: on V8 an object spread followed by more fields gets a hidden class of
 * its own each time, which made building, reading and serialising each event cost tens of µs.
 */
function requestEvent(
  event: AuditEvent["event"],
  b: EventBase,
  mcpMethod: string | undefined,
  capabilityName: string | undefined,
  v: Verdict | undefined,
  status: number | undefined,
  latencyMs: number | undefined,
  gatewayLatencyMs: number | undefined,
  upstreamLatencyMs: number | undefined,
): AuditEvent {
  return {
    event,
    operationId: b.operationId,
    upstreamServerId: b.upstreamServerId,
    subjectId: b.subjectId,
    clientName: b.clientName,
    httpMethod: b.httpMethod,
    transport: TRANSPORT,
    requestId: b.requestId,
    traceId: b.traceId,
    spanId: b.spanId,
    path: b.path,
    mcpMethod,
    capabilityName,
    outcome: v?.outcome,
    reasonCode: v?.reasonCode,
    failureOrigin: v?.failureOrigin,
    errorCode: v?.errorCode,
    status,
    latencyMs,
    gatewayLatencyMs,
    upstreamLatencyMs,
  };
}

/** Outcome of one answer the upstream sent. */
function upstreamVerdict(m: JsonRpcMessage): Verdict {
  const err = m.error as { code?: unknown } | undefined;
  if (err !== undefined) {
    const code = typeof err?.code === "number" ? err.code : undefined;
    if (code === -32042) return { outcome: "connect_required", reasonCode: "url_elicitation_required", failureOrigin: "upstream", errorCode: code };
    return { outcome: "failure", reasonCode: "jsonrpc_error", failureOrigin: "upstream", errorCode: code };
  }
  if ((m.result as { isError?: unknown } | undefined)?.isError === true) return { outcome: "application_error", reasonCode: "tool_error", failureOrigin: "upstream" };
  return { outcome: "success" };
}

/** Outcome of an answer the gateway gave itself (a policy answered without the upstream). */
function gatewayVerdict(m: JsonRpcMessage): Verdict {
  const err = m.error as { code?: unknown; data?: { code?: unknown; state?: unknown } } | undefined;
  if (err !== undefined) {
    const code = typeof err?.code === "number" ? err.code : undefined;
    const state = typeof err?.data?.state === "string" ? err.data.state : undefined;
    if (code === -32042) return { outcome: "connect_required", reasonCode: state ?? "connect_required", failureOrigin: "gateway", errorCode: code };
    if (code === -32601) return { outcome: "denied", reasonCode: "capability_hidden", failureOrigin: "gateway", errorCode: code };
    const reason = typeof err?.data?.code === "string" ? err.data.code : "jsonrpc_error";
    return { outcome: "failure", reasonCode: reason, failureOrigin: "gateway", errorCode: code };
  }
  const r = m.result as { inputRequests?: unknown; resultType?: unknown } | undefined;
  if (r && (r.inputRequests !== undefined || r.resultType === "input_required")) return { outcome: "connect_required", reasonCode: "input_required", failureOrigin: "gateway" };
  return { outcome: "success" };
}

/** Outcome of a thrown error (mapped to a response by `errorToResponse`). */
export function errorVerdict(err: unknown): Verdict {
  const code = err instanceof GatewayError ? err.code : "internal_error";
  if (code === "client_closed_request") return { outcome: "cancelled", reasonCode: code, failureOrigin: "client" };
  if (err instanceof GatewayError && (err.status === 401 || err.status === 403 || err.status === 429)) {
    return { outcome: "denied", reasonCode: code, failureOrigin: "gateway" };
  }
  return { outcome: "failure", reasonCode: code, failureOrigin: code.startsWith("upstream_") ? "upstream" : "gateway" };
}

function statusVerdict(status: number): Verdict {
  if (status < 400) return { outcome: "success" };
  if (status === 401 || status === 403) return { outcome: "denied", reasonCode: status === 401 ? "unauthorized" : "forbidden", failureOrigin: "gateway" };
  if (status === 429) return { outcome: "denied", reasonCode: "rate_limited", failureOrigin: "gateway" };
  return { outcome: "failure", reasonCode: `http_${status}`, failureOrigin: status >= 500 ? "gateway" : "client" };
}

/** The request-level outcome of one or more message outcomes. */
function aggregate(verdicts: Verdict[]): Verdict {
  const first = verdicts[0]!;
  if (verdicts.length === 1 || verdicts.every((v) => v.outcome === first.outcome)) return first;
  if (verdicts.some((v) => v.outcome === "success")) return { outcome: "partial" };
  return verdicts.find((v) => v.outcome === "failure") ?? first;
}

function clientNameOf(user: UserInfo | undefined, messages: JsonRpcMessage[]): string | undefined {
  for (const m of messages) {
    if (m.method !== "initialize") continue;
    const name = (m.params?.clientInfo as { name?: unknown } | undefined)?.name;
    if (typeof name === "string") return name;
    break;
  }
  const d = user?.data;
  const v = d?.client_name ?? d?.clientName ?? d?.azp ?? d?.client_id;
  return typeof v === "string" ? v : undefined;
}

/** One MCP request's observation. Created by the gateway; fed by the proxy handler. */
export class McpObservation {
  traceId: string | undefined = undefined;
  /** The request's server span, when tracing is on. */
  spanId: string | undefined = undefined;
  #upstreamMs = 0;
  #attempted = false;
  #answered = false;
  #forwarded: Uint8Array | undefined;
  #error: unknown = undefined;
  #tap: RpcTap | undefined;
  #tapEnded: { complete: boolean; unread: boolean } | undefined;
  #early: JsonRpcMessage[] | undefined;
  #finish: ((complete: boolean, unread: boolean) => void) | undefined;
  #listKinds: Map<string, { kind: "tool" | "prompt"; field: string }> | undefined;
  #sse = false;
  #logged = false;

  constructor(
    private readonly deps: ObservationDeps,
    readonly operationId: string,
    readonly httpMethod: string,
    readonly path: string,
    readonly requestId: string,
    private readonly original: PipelineRequest,
    private readonly started: number,
    private readonly aborted: () => boolean,
  ) {}

  /** The handler is about to send `body` upstream: the request counts as accepted. */
  forwarding(body: Uint8Array | undefined): void {
    this.#forwarded = body;
    this.#attempted = true;
  }

  /** Adds the duration of one upstream exchange (the retry after a refresh adds a second). */
  upstreamTime(ms: number): void {
    this.#upstreamMs += ms;
  }

  /** The request failed with `err` (before or after the upstream was asked). */
  failed(err: unknown): void {
    this.#error = err;
  }

  /** The handler passes the upstream's answer on (whatever its body). */
  answered(): void {
    this.#answered = true;
  }

  /** Watches the upstream body the handler is about to forward. */
  tapUpstreamBody(body: Readable, contentType: string | undefined): void {
    const sse = contentType?.startsWith("text/event-stream") === true;
    if (!sse && !contentType?.includes("json")) return;
    this.#sse = sse;
    if (sse) this.deps.metrics?.streamOpened(this.operationId);
    this.#tap = new RpcTap(sse, {
      message: (m) => this.#answer(m),
      end: (complete, unread) => {
        if (sse) this.deps.metrics?.streamClosed(this.operationId);
        if (this.#finish) this.#finish(complete, unread);
        else this.#tapEnded = { complete, unread };
      },
    });
    tapNodeBody(body, this.#tap);
  }

  #onAnswer: ((m: JsonRpcMessage) => void) | undefined;
  #answer(m: JsonRpcMessage): void {
    if (m.method !== undefined || m.id === undefined) return;
    if (this.#onAnswer) this.#onAnswer(m);
    else (this.#early ??= []).push(m);
  }

  /**
   * The response head is ready (`response` after outbound policies and hooks). Emits the
   * invocation events now and the completions when the answers are in.
   */
  async finish(response: Response, request: PipelineRequest): Promise<void> {
    const headAt = performance.now();
    // Read before the first await: the server starts sending the body right after this call.
    // A GET carries no JSON-RPC request, and its answer may be a long-lived stream the gateway holds.
    const ownAnswer = this.#answered || this.#error || this.httpMethod === "GET" ? undefined : this.#gatewayAnswers(response);
    // Refused before anything read the body (e.g. 401): its messages stay unknown rather than
    // buffering an unauthenticated body for the audit trail.
    if (this.original instanceof IncomingRequest && this.original.bodyPending) return this.accessLine(response.status, headAt);
    const info = await mcpRequestInfo(this.original);
    const user = request.user;
    const base: EventBase = {
      operationId: this.operationId,
      upstreamServerId: this.deps.upstreamOf(this.operationId),
      subjectId: user?.sub,
      clientName: clientNameOf(user, info.messages),
      httpMethod: this.httpMethod,
      requestId: this.requestId,
      traceId: this.traceId,
      spanId: this.spanId,
      path: this.path,
    };
    // Accepted: the upstream's answer was passed on. Otherwise the gateway answered itself
    // (denied, connect required, a failure), whether or not the upstream was asked first.
    const reached = this.#answered;
    const asked = this.#attempted;
    const forwardedIds = asked ? this.#forwardedIds(info.messages) : undefined;
    const pending = new Map<string, Pending>();
    for (const m of info.messages) {
      if (typeof m.method !== "string" || m.id === undefined) continue;
      const param = CAPABILITY_PARAM[m.method];
      const name = param !== undefined ? m.params?.[param] : undefined;
      const p: Pending = { msg: m, capability: typeof name === "string" ? name : undefined, verdict: undefined, at: 0 };
      pending.set(idKey(m.id), p);
      const list = LISTS[m.method];
      if (list) (this.#listKinds ??= new Map()).set(idKey(m.id), list);
      if (forwardedIds && !forwardedIds.has(idKey(m.id))) {
        p.verdict = { outcome: "denied", reasonCode: "capability_hidden", failureOrigin: "gateway" };
        p.at = headAt;
      }
    }
    const capable = user !== undefined || asked || response.headers.get("content-type")?.includes("json") === true;
    if (capable) {
      for (const p of pending.values()) {
        if (CAPABILITY_PARAM[p.msg.method!] !== undefined) this.deps.audit.emit(requestEvent(AuditEvents.capabilityInvoked, base, p.msg.method, p.capability, undefined, undefined, undefined, undefined, undefined));
      }
    }

    const settle = (m: JsonRpcMessage, verdict: Verdict, at: number) => {
      const p = pending.get(idKey(m.id));
      if (!p || p.verdict) return;
      p.verdict = verdict;
      p.at = at;
      const list = this.#listKinds?.get(idKey(m.id));
      if (list && verdict.outcome === "success") this.#learn(list, m);
    };
    if (this.#tap) {
      this.#onAnswer = (m) => settle(m, upstreamVerdict(m), performance.now());
      for (const m of this.#early ?? []) this.#onAnswer(m);
      this.#early = undefined;
      const ended = this.#tapEnded ?? (await new Promise<{ complete: boolean; unread: boolean }>((resolve) => (this.#finish = (complete, unread) => resolve({ complete, unread }))));
      const at = performance.now();
      const rest: Verdict = this.#error
        ? errorVerdict(this.#error)
        : ended.unread
          ? { outcome: "success", reasonCode: "answer_not_read" }
          : !ended.complete && this.aborted()
            ? { outcome: "cancelled", reasonCode: "client_closed_request", failureOrigin: "client" }
            : { outcome: "failure", reasonCode: ended.complete ? "no_answer" : "stream_interrupted", failureOrigin: "upstream" };
      for (const p of pending.values()) if (!p.verdict) ((p.verdict = rest), (p.at = at));
    } else {
      const answers = (await ownAnswer) ?? [];
      const verdictOf = reached ? upstreamVerdict : gatewayVerdict;
      for (const m of answers) settle(m, verdictOf(m), headAt);
      const rest = this.#error ? errorVerdict(this.#error) : statusVerdict(response.status);
      for (const p of pending.values()) if (!p.verdict) ((p.verdict = rest), (p.at = headAt));
    }

    const gatewayMs = headAt - this.started - this.#upstreamMs;
    if (capable) {
      for (const p of pending.values()) {
        if (CAPABILITY_PARAM[p.msg.method!] === undefined) continue;
        const v = p.verdict!;
        this.deps.audit.emit(
          requestEvent(
            AuditEvents.capabilityCompleted,
            base,
            p.msg.method,
            p.capability,
            v,
            response.status,
            round(p.at - this.started),
            round(gatewayMs),
            asked ? round(Math.max(0, p.at - this.started - gatewayMs)) : undefined,
          ),
        );
      }
    }
    const verdicts: Verdict[] = [];
    for (const p of pending.values()) verdicts.push(p.verdict!);
    const v = verdicts.length > 0 ? aggregate(verdicts) : this.#error ? errorVerdict(this.#error) : statusVerdict(response.status);
    const endAt = this.#sse ? performance.now() : headAt;
    const methods: JsonRpcMessage[] = [];
    for (const m of info.messages) if (typeof m.method === "string") methods.push(m);
    this.#logged = true;
    this.deps.audit.emit(
      requestEvent(
        reached ? AuditEvents.requestAccepted : AuditEvents.requestRejected,
        base,
        info.batch && methods.length > 1 ? "batch" : methods[0]?.method,
        methods.length === 1 ? pending.values().next().value?.capability : undefined,
        v,
        response.status,
        round(endAt - this.started),
        round(gatewayMs),
        asked ? round(this.#upstreamMs) : undefined,
      ),
      "info",
      "request",
    );
  }

  /**
   * Writes the plain access line of a request that gets no request event (refused before its
   * body was read, or the observation failed); once per request.
   */
  accessLine(status: number, at = performance.now()): void {
    if (this.#logged) return;
    this.#logged = true;
    logAccess(this.deps.audit.log, { requestId: this.requestId, method: this.httpMethod, path: this.path, route: this.operationId, status, ms: at - this.started });
  }

  /**
   * Ids of the messages the upstream got (a policy may have removed some); undefined when it got
   * the request's own body. By the time the upstream was asked, the body has been read.
   */
  #forwardedIds(messages: JsonRpcMessage[]): Set<string> | undefined {
    const body = this.#forwarded;
    if (body === undefined || messages.length === 0) return undefined;
    const o = this.original;
    const original = o instanceof IncomingRequest ? o.bytesIfRead : (o as { rawBody?: Uint8Array }).rawBody;
    if (body === original) return undefined;
    try {
      const json: unknown = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
      const list = Array.isArray(json) ? json : [json];
      return new Set(list.map((m: JsonRpcMessage) => idKey(m?.id)));
    } catch {
      return undefined;
    }
  }

  /** JSON-RPC answers in a response the gateway made itself (small; read from a clone). */
  #gatewayAnswers(response: Response): Promise<JsonRpcMessage[]> | undefined {
    const type = response.headers.get("content-type") ?? "";
    const sse = type.startsWith("text/event-stream");
    if (!response.body || (!sse && !type.includes("json"))) return undefined;
    let copy: Promise<ArrayBuffer>;
    try {
      copy = response.clone().arrayBuffer();
    } catch {
      return undefined;
    }
    return copy.then(
      (bytes) => {
        const out: JsonRpcMessage[] = [];
        const tap = new RpcTap(sse, { message: (m) => out.push(m), end: () => {} });
        tap.chunk(Buffer.from(bytes));
        tap.finish(true);
        return out;
      },
      () => [],
    );
  }

  #learn(list: { kind: "tool" | "prompt"; field: string }, m: JsonRpcMessage): void {
    const items = (m.result as Record<string, unknown> | undefined)?.[list.field];
    if (!Array.isArray(items) || !this.deps.metrics) return;
    const names = items.map((t: { name?: unknown }) => t?.name).filter((n): n is string => typeof n === "string");
    this.deps.metrics.learn(this.operationId, list.kind, names);
  }
}

/** Where the gateway keeps a request's observation on its context. */
export const OBSERVATION = Symbol("tollgate.observation");

/** A context that may carry an observation (the gateway's request context does). */
export interface ObservedContext {
  [OBSERVATION]?: McpObservation | undefined;
}
