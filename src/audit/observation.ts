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
import { Buffer } from "node:buffer";
import { performance } from "node:perf_hooks";
import { GatewayError } from "../errors.js";
import { cachedMcpRequestInfo, mcpRequestInfo, parseMcpRequestInfo, type JsonRpcId, type JsonRpcMessage, type McpRequestInfo } from "../mcp/messages.js";
import { bytesAre, isJsonSpace, valueAt } from "../mcp/scan.js";
import { IncomingRequest, type PipelineRequest, type UserInfo } from "../pipeline/types.js";
import { holdWatcher, streamOf, type NodeBodySource } from "../pipeline/node-body.js";
import { FlatShape, logAccess } from "../log.js";
import { beforeExitFlush } from "../log-writer.js";
import type { Audit } from "./audit.js";
import { AuditEvents, type AuditEvent, type FailureOrigin, type Outcome } from "./events.js";
import type { McpMetrics } from "./metrics.js";
import { RpcTap, tapNodeBody, type TapCallbacks } from "./rpc-tap.js";

/**
 * Methods whose messages are capability calls, with the param that names the capability.
 *
 * This table and the next are Maps, looked up by the method name a request carries. As object
 * literals indexed by that name they answered for inherited names too ("constructor"), and on
 * Node 24 the keyed load in `#complete` deoptimized its function again and again under load
 * (V8's reason: "unexpected name in keyed access"; about 8 times a second, for as long as the
 * process ran). Not reproduced with a parsed message alone; gone with the Maps.
 */
const CAPABILITY_PARAM: ReadonlyMap<string, string> = new Map([
  ["tools/call", "name"],
  ["prompts/get", "name"],
  ["resources/read", "uri"],
]);
const LISTS: ReadonlyMap<string, { kind: "tool" | "prompt"; field: string }> = new Map([
  ["tools/list", { kind: "tool", field: "tools" }],
  ["prompts/list", { kind: "prompt", field: "prompts" }],
] as const);
const TRANSPORT = "streamable-http";
/** Wall-clock ms less `performance.now()`, as last read, and the `performance.now()` it was read at. */
let wallOffset = 0;
let wallOffsetAt = -Infinity;
/** Longest a wall-clock offset is used (ms of `performance.now()` since it was read). */
const WALL_OFFSET_MS = 1000;
/**
 * A `performance.now()` time as ms since the epoch, for an event written after the fact: the
 * time plus the wall clock's offset from the monotonic one. The offset is read again once a
 * time asked about is more than {@link WALL_OFFSET_MS} from the last reading, so two clock reads
 * serve the many lines of a second instead of two per line, and an adjusted wall clock shows
 * within a second. Not `timeOrigin + at`: that drifts from the wall clock as a
 * long-running process's clock is adjusted, while other lines are stamped with the wall clock.
 */
export function epochMs(at: number): number {
  if (Math.abs(at - wallOffsetAt) > WALL_OFFSET_MS) {
    const now = performance.now();
    wallOffset = Date.now() - now;
    wallOffsetAt = now;
  }
  return at + wallOffset;
}
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
  /** A capability call (tools/call, prompts/get, resources/read): it gets its own events. */
  call: boolean;
  capability: string | undefined;
  /** Set for a list request whose answer names capabilities (the metrics learn them). */
  list: { kind: "tool" | "prompt"; field: string } | undefined;
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
export function requestEvent(
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

/**
 * The layout of {@link requestEvent}'s events, for their log lines ({@link FlatShape}): the same
 * keys in the same order (a test holds the two together). Lines are told apart by the event's
 * kind and route.
 */
export const REQUEST_EVENT_SHAPE = new FlatShape<AuditEvent>(
  [
    "event",
    "operationId",
    "upstreamServerId",
    "subjectId",
    "clientName",
    "httpMethod",
    "transport",
    "requestId",
    "traceId",
    "spanId",
    "path",
    "mcpMethod",
    "capabilityName",
    "outcome",
    "reasonCode",
    "failureOrigin",
    "errorCode",
    "status",
    "latencyMs",
    "gatewayLatencyMs",
    "upstreamLatencyMs",
  ],
  (e, out) => {
    out[0] = e.event;
    out[1] = e.operationId;
    out[2] = e.upstreamServerId;
    out[3] = e.subjectId;
    out[4] = e.clientName;
    out[5] = e.httpMethod;
    out[6] = e.transport;
    out[7] = e.requestId;
    out[8] = e.traceId;
    out[9] = e.spanId;
    out[10] = e.path;
    out[11] = e.mcpMethod;
    out[12] = e.capabilityName;
    out[13] = e.outcome;
    out[14] = e.reasonCode;
    out[15] = e.failureOrigin;
    out[16] = e.errorCode;
    out[17] = e.status;
    out[18] = e.latencyMs;
    out[19] = e.gatewayLatencyMs;
    out[20] = e.upstreamLatencyMs;
  },
  2,
);

/** Longest answer {@link plainSuccess} reads; a longer one is parsed. */
export const PLAIN_SCAN_MAX_BYTES = 4 * 1024 * 1024;
/** Up to this size an answer is read in one JavaScript pass, beyond it by native searches. */
const SMALL_ANSWER_BYTES = 1024;

/** Whether an `"id"` key ends at `at` (just past its closing quote) and its value is `idText`. */
function idIs(body: Uint8Array, at: number, idText: string): boolean {
  const v = valueAt(body, at);
  if (!bytesAre(body, v, idText)) return false;
  const next = body[v + idText.length];
  return next === 0x2c /* , */ || next === 0x7d /* } */ || isJsonSpace(next);
}

/**
 * True when a JSON body is, from its bytes alone, a successful answer to the call with `id`: a
 * `"result"` member, an `"id"` member of that value, no `"error"` string and no `\u` escape
 * anywhere (one could spell a key), and `"isError"` only as `"isError": false`. An `"id"` nested
 * inside the result counts as the id too. False only means "parse it" — so does an answer longer
 * than {@link PLAIN_SCAN_MAX_BYTES} or an id that is not plain ASCII.
 *
 * A short answer (most calls get one) is read in one pass in JavaScript, which costs less than
 * the calls into native code a parse or a series of searches needs; a longer one with native
 * searches, which run far faster than a parse (1 MB: about 55 µs against 1.4 ms).
 */
export function plainSuccess(body: Uint8Array, id: JsonRpcId | undefined): boolean {
  let idText: string;
  if (typeof id === "number") idText = String(id);
  else if (typeof id === "string" && /^[\x20-\x7e]*$/.test(id) && !id.includes('"') && !id.includes("\\")) idText = `"${id}"`;
  else return false;
  if (body.length > PLAIN_SCAN_MAX_BYTES) return false;
  return body.length <= SMALL_ANSWER_BYTES ? readSmall(body, idText) : searchLarge(Buffer.from(body.buffer, body.byteOffset, body.byteLength), idText);
}

/**
 * {@link plainSuccess} in one pass. At an unescaped quote a JSON string starts or ends, and only
 * a starting quote can be followed by a letter: a match right after a quote is a string token
 * (a key, or a value of exactly that text).
 */
export function readSmall(body: Uint8Array, idText: string): boolean {
  let result = false;
  let idMatches = false;
  const n = body.length;
  for (let i = 0; i < n; i++) {
    // On to the next quote or backslash, in a loop that does nothing else (so it compiles to a
    // few instructions per byte).
    let c = body[i]!;
    while (c !== 0x22 /* " */ && c !== 0x5c /* \ */) {
      if (++i === n) return result && idMatches;
      c = body[i]!;
    }
    if (c === 0x5c) {
      if (body[i + 1] === 0x75 /* u */) return false;
      i++;
      continue;
    }
    const d = body[i + 1];
    if (d === 0x65 /* e */) {
      if (bytesAre(body, i + 1, 'error"')) return false;
    } else if (d === 0x72 /* r */) {
      if (bytesAre(body, i + 1, 'result"')) result = true;
    } else if (d === 0x69 /* i */) {
      if (bytesAre(body, i + 1, 'isError"')) {
        if (!bytesAre(body, valueAt(body, i + 9), "false")) return false;
      } else if (bytesAre(body, i + 1, 'id"') && idIs(body, i + 4, idText)) idMatches = true;
    }
  }
  return result && idMatches;
}

const RESULT_KEY = Buffer.from('"result"');
const ERROR_KEY = Buffer.from('"error"');
const IS_ERROR_KEY = Buffer.from('"isError"');
const ID_KEY = Buffer.from('"id"');
const ESCAPE = Buffer.from("\\u");

/**
 * {@link plainSuccess} by native searches. Stricter than {@link readSmall} in one way: it does
 * not tell string contents from tokens, so an escaped `"error"` inside a text also means "parse".
 */
export function searchLarge(body: Buffer, idText: string): boolean {
  if (body.includes(ERROR_KEY) || body.includes(ESCAPE) || !body.includes(RESULT_KEY)) return false;
  for (let at = body.indexOf(IS_ERROR_KEY); at >= 0; at = body.indexOf(IS_ERROR_KEY, at + 1)) {
    if (!bytesAre(body, valueAt(body, at + IS_ERROR_KEY.length), "false")) return false;
  }
  for (let at = body.indexOf(ID_KEY); at >= 0; at = body.indexOf(ID_KEY, at + 1)) {
    if (idIs(body, at + ID_KEY.length, idText)) return true;
  }
  return false;
}

/** The verdict of everything that succeeded (verdicts are never changed once made). */
const SUCCESS: Verdict = { outcome: "success" };

/** Outcome of one answer the upstream sent. */
function upstreamVerdict(m: JsonRpcMessage): Verdict {
  const err = m.error as { code?: unknown } | undefined;
  if (err !== undefined) {
    const code = typeof err?.code === "number" ? err.code : undefined;
    if (code === -32042) return { outcome: "connect_required", reasonCode: "url_elicitation_required", failureOrigin: "upstream", errorCode: code };
    return { outcome: "failure", reasonCode: "jsonrpc_error", failureOrigin: "upstream", errorCode: code };
  }
  if ((m.result as { isError?: unknown } | undefined)?.isError === true) return { outcome: "application_error", reasonCode: "tool_error", failureOrigin: "upstream" };
  return SUCCESS;
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
  return SUCCESS;
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
  if (status < 400) return SUCCESS;
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

/** The request's body bytes if they have been read (a web request: those it was built with). */
function bytesAtHand(o: PipelineRequest): Uint8Array | undefined {
  return o instanceof IncomingRequest ? o.bytesIfRead : (o as { rawBody?: Uint8Array }).rawBody;
}

/** How the upstream body ended, when it ended before the observation was ready for it. */
interface TapEnd {
  complete: boolean;
  unread: boolean;
  /** Whether the client had left by then (read when the body ended, not when it is looked at). */
  aborted: boolean;
}

/**
 * One MCP request's observation. Created by the gateway; fed by the proxy handler.
 *
 * It runs without promises or per-request closures on the common path: `finish` (at the answer's
 * head) records the invocations, the tap's callbacks (this object is the tap's callback object)
 * settle each answer as it passes, and the end of the body completes the observation.
 */
export class McpObservation implements TapCallbacks {
  traceId: string | undefined = undefined;
  /** The request's server span, when tracing is on. */
  spanId: string | undefined = undefined;
  #upstreamMs = 0;
  #attempted = false;
  #answered = false;
  #forwarded: Uint8Array | undefined;
  #error: unknown = undefined;
  #tap: RpcTap | undefined;
  #tapEnded: TapEnd | undefined;
  #early: JsonRpcMessage[] | undefined;
  /** When each of `#early` came. */
  #earlyAt: number[] | undefined;
  /** When the upstream body ended (`end`). */
  #endedAt = 0;
  #sse = false;
  #logged = false;
  // Set by `finish` for the completion:
  #started = false;
  #base: EventBase | undefined;
  #info: McpRequestInfo | undefined;
  /**
   * The request's calls in order (an array, not a map by id: most requests hold one call, and a
   * batch's answers are matched by a short scan). Calls that share an id are each their own
   * entry; an answer settles the first unsettled one with its id.
   */
  #pending: Pending[] | undefined;
  #status = 0;
  #headAt = 0;
  #capable = false;
  // While the observation waits in the queue (`finish` put the rest off, see `queueObservation`):
  #queuedResponse: Response | undefined = undefined;
  #queuedRequest: PipelineRequest | undefined = undefined;
  /** The upstream body, handed over whole while queued, and when it was. */
  #held: Buffer | undefined = undefined;
  #heldAt = 0;

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

  /** Watches the upstream body the handler is about to forward (an SSE body as the stream it is read from). */
  tapUpstreamBody(body: NodeBodySource, contentType: string | undefined): void {
    const sse = contentType?.startsWith("text/event-stream") === true;
    if (!sse && !contentType?.includes("json")) return;
    this.#sse = sse;
    if (sse) this.deps.metrics?.streamOpened(this.operationId);
    this.#tap = new RpcTap(sse, this);
    // An SSE body is watched from now on; a JSON body by whoever reads it (the edge usually
    // takes a small answer whole, in one go).
    if (sse) tapNodeBody(streamOf(body), this.#tap);
    else holdWatcher(body, this.#tap);
  }

  /** When the upstream body's bytes were seen: now, or when a body held while queued came. */
  #clock(): number {
    return this.#heldAt !== 0 ? this.#heldAt : performance.now();
  }

  /** Tap callback: a whole body came while the observation is queued; it is read when the queue runs. */
  hold(body: Buffer): boolean {
    if (this.#queuedResponse === undefined) return false;
    this.#held = body;
    this.#heldAt = performance.now();
    return true;
  }

  /** Tap callback: one message of the upstream body. */
  message(m: JsonRpcMessage): void {
    if (m.method !== undefined || m.id === undefined) return;
    if (this.#started) this.#settle(m, upstreamVerdict(m), this.#clock());
    else {
      (this.#early ??= []).push(m);
      (this.#earlyAt ??= []).push(this.#clock());
    }
  }

  /**
   * Tap callback: a whole JSON body. The answer to a single call is settled as a success
   * without parsing it when its bytes show that it is one ({@link plainSuccess}). Anything else
   * — errors, tool errors, lists (whose names the metrics learn), batches — is parsed. Most
   * answers are successes, and parsing one costs time in proportion to its size.
   */
  wholeBody(body: Buffer): boolean {
    if (!this.#started || this.#info!.batch) return false;
    const pending = this.#pending!;
    if (pending.length !== 1) return false;
    const p = pending[0]!;
    if (p.verdict !== undefined || p.list !== undefined || !plainSuccess(body, p.msg.id)) return false;
    p.verdict = SUCCESS;
    p.at = this.#clock();
    return true;
  }

  /** Tap callback: the upstream body is over. */
  end(complete: boolean, unread: boolean): void {
    if (this.#sse) this.deps.metrics?.streamClosed(this.operationId);
    this.#endedAt = this.#clock();
    const aborted = !complete && this.aborted();
    if (!this.#started) {
      this.#tapEnded = { complete, unread, aborted };
      return;
    }
    try {
      this.#completeTapped(complete, unread, aborted);
    } catch (err) {
      this.#failedObservation(err, this.#status);
    }
  }

  /**
   * The response head is ready (`response` after outbound policies and hooks). Emits the
   * invocation events and the completions when the answers are in. An answer that came from the
   * upstream is looked at after the response is on its way, with other requests' (within 20 ms,
   * `queueObservation`); one the gateway made itself now. Returns a promise only when it must
   * wait for something (the request's messages not parsed yet, an answer the gateway made
   * itself); failures are logged, never thrown. `headAt` is when the head was ready
   * (`performance.now()`), now unless the caller has just read the clock.
   */
  finish(response: Response, request: PipelineRequest, headAt = performance.now()): Promise<void> | undefined {
    try {
      // Read before anything waits: the server starts sending the body right after this call.
      // A GET carries no JSON-RPC request, and its answer may be a long-lived stream the gateway holds.
      const ownAnswer = this.#answered || this.#error || this.httpMethod === "GET" ? undefined : this.#gatewayAnswers(response);
      // Refused before anything read the body (e.g. 401): its messages stay unknown rather than
      // buffering an unauthenticated body for the audit trail.
      if (this.original instanceof IncomingRequest && this.original.bodyPending) {
        this.accessLine(response.status, headAt);
        return undefined;
      }
      if (ownAnswer === undefined) {
        this.#queuedResponse = response;
        this.#queuedRequest = request;
        this.#headAt = headAt;
        queueObservation(this);
        return undefined;
      }
      const info = cachedMcpRequestInfo(this.original) ?? this.#parseNow();
      return (async () => {
        try {
          this.#start(info ?? (await mcpRequestInfo(this.original)), response, request, headAt, ownAnswer !== undefined);
          if (ownAnswer) this.#completeOwn((await ownAnswer) ?? []);
        } catch (err) {
          this.#failedObservation(err, response.status);
        }
      })();
    } catch (err) {
      this.#failedObservation(err, response.status);
      return undefined;
    }
  }

  /**
   * The rest of `finish`, run from the queue: reads the request's messages, records the
   * invocations, then reads the upstream body if it came whole in the meantime. Never throws.
   */
  runQueued(): void {
    const response = this.#queuedResponse!;
    const request = this.#queuedRequest!;
    this.#queuedResponse = undefined;
    this.#queuedRequest = undefined;
    const held = this.#held;
    this.#held = undefined;
    try {
      const info = cachedMcpRequestInfo(this.original) ?? this.#parseNow();
      if (info !== undefined) this.#start(info, response, request, this.#headAt, false);
      else void this.#startWhenRead(response, request);
      // When the request's messages are still being read, the answer waits for them as it would
      // have without the queue (`#early`, `#tapEnded`).
      if (held !== undefined) this.#tap!.whole(held);
    } catch (err) {
      this.#failedObservation(err, response.status);
    }
  }

  async #startWhenRead(response: Response, request: PipelineRequest): Promise<void> {
    try {
      this.#start(await mcpRequestInfo(this.original), response, request, this.#headAt, false);
    } catch (err) {
      this.#failedObservation(err, response.status);
    }
  }

  /**
   * The request's messages read now when its bytes are at hand (they are once the upstream was
   * asked); a summary of a plain request does (the trail reads ids, methods and capability names).
   */
  #parseNow(): McpRequestInfo | undefined {
    const o = this.original;
    if (o.method !== "POST") return parseMcpRequestInfo(o, undefined);
    const bytes = bytesAtHand(o);
    return bytes === undefined ? undefined : parseMcpRequestInfo(o, bytes, undefined, true);
  }

  /** Records the invocations; completes at once when no upstream body is still to come. */
  #start(info: McpRequestInfo, response: Response, request: PipelineRequest, headAt: number, ownAnswerComing: boolean): void {
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
    this.#base = base;
    this.#info = info;
    this.#status = response.status;
    this.#headAt = headAt;
    const asked = this.#attempted;
    const forwardedIds = asked ? this.#forwardedIds(info.messages) : undefined;
    const pending: Pending[] = (this.#pending = []);
    for (const m of info.messages) {
      if (typeof m.method !== "string" || m.id === undefined) continue;
      const param = CAPABILITY_PARAM.get(m.method);
      const name = param !== undefined ? m.params?.[param] : undefined;
      const p: Pending = { msg: m, call: param !== undefined, capability: typeof name === "string" ? name : undefined, list: LISTS.get(m.method), verdict: undefined, at: 0 };
      pending.push(p);
      if (forwardedIds && !forwardedIds.has(idKey(m.id))) {
        p.verdict = { outcome: "denied", reasonCode: "capability_hidden", failureOrigin: "gateway" };
        p.at = headAt;
      }
    }
    this.#capable = user !== undefined || asked || response.headers.get("content-type")?.includes("json") === true;
    // An invocation is its own line while its answer streams: the call is then in flight for as
    // long as the stream runs. An answer that comes whole is completed as soon as it has passed,
    // and its completion carries every field of the invocation, so the invocation goes to
    // `debug` (written only when that level is on).
    const level = this.#sse ? "info" : "debug";
    if (this.#capable && (level === "info" || this.deps.audit.log.isLevelEnabled("debug"))) {
      for (const p of pending) {
        if (p.call) {
          const e = requestEvent(AuditEvents.capabilityInvoked, base, p.msg.method, p.capability, undefined, undefined, undefined, undefined, undefined);
          this.deps.audit.emit(e, level, undefined, epochMs(headAt), REQUEST_EVENT_SHAPE);
        }
      }
    }
    this.#started = true;
    if (this.#tap) {
      const early = this.#early;
      const earlyAt = this.#earlyAt!;
      this.#early = this.#earlyAt = undefined;
      if (early) for (let i = 0; i < early.length; i++) this.#settle(early[i]!, upstreamVerdict(early[i]!), earlyAt[i]!);
      const ended = this.#tapEnded;
      if (ended) this.#completeTapped(ended.complete, ended.unread, ended.aborted);
    } else if (!ownAnswerComing) this.#completeOwn(undefined);
  }

  #settle(m: JsonRpcMessage, verdict: Verdict, at: number): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    const id = m.id;
    let p: Pending | undefined;
    for (const q of pending) {
      if (q.verdict === undefined && q.msg.id === id) {
        p = q;
        break;
      }
    }
    if (p === undefined) return;
    p.verdict = verdict;
    p.at = at;
    if (p.list && verdict.outcome === "success") this.#learn(p.list, m);
  }

  /** The upstream body ended: what it did not answer gets the verdict of how it ended. */
  #completeTapped(complete: boolean, unread: boolean, aborted: boolean): void {
    // Most often every call has its answer by now: then nothing is left to settle.
    let rest: Verdict | undefined;
    let at = 0;
    for (const p of this.#pending!) {
      if (p.verdict) continue;
      if (rest === undefined) {
        at = this.#endedAt;
        rest = this.#error
          ? errorVerdict(this.#error)
          : unread
            ? { outcome: "success", reasonCode: "answer_not_read" }
            : aborted
              ? { outcome: "cancelled", reasonCode: "client_closed_request", failureOrigin: "client" }
              : { outcome: "failure", reasonCode: complete ? "no_answer" : "stream_interrupted", failureOrigin: "upstream" };
      }
      p.verdict = rest;
      p.at = at;
    }
    this.#complete();
  }

  /** No upstream body to read: the answers are those the gateway made (if any), else the status. */
  #completeOwn(answers: JsonRpcMessage[] | undefined): void {
    const headAt = this.#headAt;
    if (answers) {
      const verdictOf = this.#answered ? upstreamVerdict : gatewayVerdict;
      for (const m of answers) this.#settle(m, verdictOf(m), headAt);
    }
    const rest = this.#error ? errorVerdict(this.#error) : statusVerdict(this.#status);
    for (const p of this.#pending!) if (!p.verdict) ((p.verdict = rest), (p.at = headAt));
    this.#complete();
  }

  /** Writes the completions and the request event. */
  #complete(): void {
    const base = this.#base!;
    const info = this.#info!;
    const pending = this.#pending!;
    const asked = this.#attempted;
    const status = this.#status;
    const gatewayMs = this.#headAt - this.started - this.#upstreamMs;
    let v: Verdict | undefined;
    let mixed = false;
    for (const p of pending) {
      const pv = p.verdict!;
      if (v === undefined) v = pv;
      else if (pv.outcome !== v.outcome) mixed = true;
      if (!this.#capable || !p.call) continue;
      this.deps.audit.emit(
        requestEvent(
          AuditEvents.capabilityCompleted,
          base,
          p.msg.method,
          p.capability,
          pv,
          status,
          round(p.at - this.started),
          round(gatewayMs),
          asked ? round(Math.max(0, p.at - this.started - gatewayMs)) : undefined,
        ),
        "info",
        undefined,
        epochMs(p.at),
        REQUEST_EVENT_SHAPE,
      );
    }
    if (mixed) v = aggregate(pending.map((p) => p.verdict!));
    else v ??= this.#error ? errorVerdict(this.#error) : statusVerdict(status);
    const endAt = this.#sse ? this.#endedAt : this.#headAt;
    let methods = 0;
    let first: JsonRpcMessage | undefined;
    for (const m of info.messages) {
      if (typeof m.method !== "string") continue;
      methods++;
      first ??= m;
    }
    this.#logged = true;
    this.deps.audit.emit(
      requestEvent(
        this.#answered ? AuditEvents.requestAccepted : AuditEvents.requestRejected,
        base,
        info.batch && methods > 1 ? "batch" : first?.method,
        methods === 1 ? pending[0]?.capability : undefined,
        v,
        status,
        round(endAt - this.started),
        round(gatewayMs),
        asked ? round(this.#upstreamMs) : undefined,
      ),
      "info",
      "request",
      epochMs(this.#tap ? this.#endedAt : this.#headAt),
      REQUEST_EVENT_SHAPE,
    );
  }

  #failedObservation(err: unknown, status: number): void {
    this.deps.audit.log.warn({ err, requestId: this.requestId }, "audit observation failed");
    this.accessLine(status);
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
    if (body === bytesAtHand(this.original)) return undefined;
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

/**
 * Observations whose answer came from the upstream wait here and are looked at together: when the
 * oldest has waited {@link QUEUE_MS}, or at the end of the event loop's turn once
 * {@link QUEUE_MAX} wait. Reading their messages, building their events and writing their lines
 * one after the other costs less CPU than doing each in the middle of its own request's work,
 * whose code and data have pushed the audit trail's out of the processor's caches; and the answer
 * goes out before any of it. The events are the same, with the times taken when things happened,
 * and written a little later, as the log is anyway (it is buffered for up to a second). The
 * gateway's shutdown and a process that exits run what is queued first.
 *
 * Each waiting observation holds its request and answer, which the young-generation collector
 * copies when it runs while they wait: flat out, 64 waiting made about 560 KB survive each
 * collection against about 420 KB with 16 (Node 24), for the same batching within a turn of the
 * event loop. At a fixed rate the 20 ms bound batches first either way.
 */
const QUEUE_MS = 20;
const QUEUE_MAX = 16;
let queued: McpObservation[] = [];
let timer: NodeJS.Timeout | undefined;

function queueObservation(o: McpObservation): void {
  const n = queued.push(o);
  if (n === 1) {
    // One timer object for the process, re-armed: nothing allocated per batch.
    if (timer) timer.refresh();
    else timer = setTimeout(drainObservations, QUEUE_MS).unref();
  } else if (n === QUEUE_MAX) setImmediate(drainObservations);
}

/** Looks at every queued observation now (their events are written). */
export function drainObservations(): void {
  const list = queued;
  if (list.length === 0) return;
  queued = [];
  for (let i = 0; i < list.length; i++) list[i]!.runQueued();
}

// Before the log writers' exit flush (log-writer.ts), and on its own for a logger with another
// destination (whichever runs first writes the queue; the other finds it empty).
beforeExitFlush(drainObservations);
process.on("exit", drainObservations);

/** Where the gateway keeps a request's observation on its context. */
export const OBSERVATION = Symbol("tollgate.observation");

/** A context that may carry an observation (the gateway's request context does). */
export interface ObservedContext {
  [OBSERVATION]?: McpObservation | undefined;
}
