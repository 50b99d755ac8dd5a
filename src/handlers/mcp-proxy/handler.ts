/**
 * `McpProxyHandler`: the Streamable HTTP passthrough.
 *
 * Every MCP message travels as is: POST (JSON or SSE answers), GET (the server→client SSE
 * stream), DELETE (end of session), for sessionful (2025-03-26 … 2025-11-25) and stateless
 * (2026-07-28) clients alike. Status codes and bodies come back faithfully (202, 404 for an
 * expired session, 405, …). The handler only adds what a gateway must: credentials from
 * `context.upstreamHeaders` instead of the caller's, `X-Forwarded-*`, Origin validation,
 * timeouts, one retry after an upstream 401/403 when a credential policy can refresh, and
 * propagation of client aborts. Where the gateway authenticated the caller, an upstream auth
 * challenge nobody recovered from becomes 502 `upstream_auth_failed`: the client never sees the
 * upstream's `WWW-Authenticate`, and session ids are bound to the caller (`session.ts`): a
 * session id whose tag does not belong to the caller gets 404 without reaching the upstream.
 * A caller's GET stream also carries the gateway's `notifications/elicitation/complete` once a
 * connection the session was asked for is made (`sse-inject.ts`).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 * @see https://modelcontextprotocol.io/specification/2026-07-28/basic/transports
 */
import { Buffer } from "node:buffer";
import type { Readable } from "node:stream";
import { Agent, type Dispatcher } from "undici";
import { GatewayError } from "../../errors.js";
import { nodeStreamResponse } from "../../pipeline/node-body.js";
import { HeaderMap } from "../../pipeline/header-map.js";
import { IncomingRequest, UPSTREAM_SIGNAL, type GatewayContext, type Handler, type PipelineRequest, type UpstreamSignal } from "../../pipeline/types.js";
import type { BuildInit } from "../../policies/registry.js";
import { isBatchBody, mcpRequestInfo, parseMcpRequestInfo, sessionCapabilities, type JsonRpcMessage } from "../../mcp/messages.js";
import { deferredSessions, isDeferredSession } from "../../mcp/deferred-sessions.js";
import { sessionKey } from "../../mcp/elicitations.js";
import { AnswerInstead, startUpstreamSession } from "./deferred.js";
import { downstreamResponseHeaders, headerValue, upstreamRequestHeaders } from "./headers.js";
import { DEFAULT_CONNECT_TIMEOUT_MS, type McpProxyOptions } from "./options.js";
import { createOriginCheck } from "./origin.js";
import { createSessionBinder, SESSION_BINDING_LABEL } from "./session.js";
import { completionStreams } from "./sse-inject.js";
import { appendSearch, compileRewritePattern, searchOf } from "./target.js";
import { discard, endsEmpty, exchange as exchangeOnce, type ExchangeOptions, type RedirectPolicy, type UpstreamResponse } from "./upstream.js";
import { OBSERVATION, type McpObservation, type ObservedContext } from "../../audit/observation.js";
import { runInSpan, type Tracing } from "../../tracing/index.js";

/** Statuses whose responses carry no body (a web Response refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
const INITIALIZE = Buffer.from('"initialize"');
const KEEP_ALIVE_MS = 30_000;

function hasInitialize(messages: readonly JsonRpcMessage[]): boolean {
  for (const m of messages) if (m.method === "initialize") return true;
  return false;
}

const isAuthRefusal = (res: UpstreamResponse) => res.statusCode === 401 || res.statusCode === 403;

/** A 401, or a 403 carrying a `WWW-Authenticate` challenge (e.g. insufficient_scope). */
const isChallenge = (res: UpstreamResponse) =>
  res.statusCode === 401 || (res.statusCode === 403 && headerValue(res.headers, "www-authenticate") !== undefined);

/** A handler with resources (its own connection pool, if any) to release when the gateway closes. */
export type McpProxyHandler = Handler & { close(): Promise<void> };

/**
 * One upstream exchange in a client span whose W3C `traceparent` (and `tracestate`) the upstream
 * receives; the body (and any `_meta` trace keys in it) goes as the client sent it.
 * @see https://www.w3.org/TR/trace-context/#traceparent-header
 */
async function traced(tracing: Tracing, o: ExchangeOptions, policy: RedirectPolicy): Promise<UpstreamResponse> {
  let server: { "server.address"?: string; "server.port"?: number } = {};
  try {
    const u = new URL(o.url);
    server = { "server.address": u.hostname, "server.port": Number(u.port) || (u.protocol === "https:" ? 443 : 80) };
  } catch {
    // undici reports the bad URL
  }
  const span = tracing.start(`upstream ${o.method}`, "client", { "http.request.method": o.method, ...server });
  tracing.inject(span, o.headers);
  return runInSpan(tracing, span, () => exchangeOnce(o, policy), (res) => res.statusCode);
}

/** Builds the handler once per route, from validated options. */
export function createMcpProxyHandler(options: McpProxyOptions, init: BuildInit): McpProxyHandler {
  const { services } = init;
  const target = compileRewritePattern(options.rewritePattern, services.env);
  const originAllowed = createOriginCheck(services.settings.publicUrl, options.allowedOrigins);
  const publicUrl = new URL(services.settings.publicUrl);
  const publicProto = publicUrl.protocol.slice(0, -1);
  const publicHost = publicUrl.host.toLowerCase();
  const forwardSearch = options.forwardSearch && !target.placesSearch;
  const redirects: Omit<RedirectPolicy, "credentials"> = {
    follow: options.followRedirects,
    allowedOrigins: new Set(options.allowedRedirectOrigins.map((o) => o.replace(/\/$/, ""))),
  };
  // The shared pool (no per-origin cap, so long-lived SSE streams never queue short POSTs) uses
  // undici's default connect timeout; a route asking for another gets a pool of its own.
  const own =
    options.connectTimeoutMs === DEFAULT_CONNECT_TIMEOUT_MS
      ? undefined
      : new Agent({ connect: { timeout: options.connectTimeoutMs }, keepAliveTimeout: KEEP_ALIVE_MS, pipelining: 1 });
  const dispatcher: Dispatcher = own ?? services.dispatcher;
  const binder = createSessionBinder(services.secrets.deriveKey(SESSION_BINDING_LABEL));
  const deferred = deferredSessions(services.store);
  const { relay, holdSession } = completionStreams(services, options.idleTimeoutMs);

  function forwarding(request: PipelineRequest, context: GatewayContext) {
    const host = request.headers.get("host") ?? new URL(request.url).host;
    const proto = host.toLowerCase() === publicHost ? publicProto : request.url.startsWith("https:") ? "https" : "http";
    return { remoteAddress: context.remoteAddress, proto, host };
  }

  /**
   * Asks the credential policy what to do about a 401/403; undefined lets the proxy answer.
   * After the retry (`retried`), only a Response counts: a request is retried at most once.
   */
  async function recover(res: UpstreamResponse, context: GatewayContext, retried: boolean): Promise<string | Response | undefined> {
    const hooks = context.upstreamAuth;
    if (!hooks) return undefined;
    const hook = res.statusCode === 401 ? hooks.onUnauthorized : res.statusCode === 403 ? hooks.onForbidden : undefined;
    if (!hook) return undefined;
    let outcome: string | Response | undefined;
    try {
      outcome = await hook.call(hooks, {
        status: res.statusCode,
        wwwAuthenticate: headerValue(res.headers, "www-authenticate"),
        ...(retried ? { retried: true } : {}),
      });
    } catch (err) {
      discard(res);
      throw err;
    }
    if (retried && typeof outcome === "string") outcome = undefined;
    if (outcome !== undefined) discard(res);
    return outcome;
  }

  /**
   * An upstream auth refusal nobody recovered from, on a route where the gateway authenticated
   * the caller: the client must not see the upstream's challenge (it would send the client to
   * the upstream's authorization server, to bring back a token meant for the upstream).
   */
  function refusedCredentials(res: UpstreamResponse, context: GatewayContext): GatewayError {
    discard(res);
    context.log.warn(
      { requestId: context.requestId, route: context.route.operationId, upstreamStatus: res.statusCode },
      "upstream refused the gateway's credentials; its challenge is not passed to the client",
    );
    return new GatewayError("upstream_auth_failed", 502, "The upstream rejected the gateway's credentials.");
  }

  /**
   * Keeps `sessionCapabilities` in step, keyed by the id the CLIENT uses (`newSid` is the
   * client-facing id of a session the upstream just created).
   */
  function remember(request: PipelineRequest, res: UpstreamResponse, initialize: boolean, newSid: string | undefined, context: GatewayContext) {
    const sid = request.headers.get("mcp-session-id");
    if (request.method === "DELETE" && sid && res.statusCode < 300) sessionCapabilities.delete(sid);
    else if (sid && res.statusCode === 404) sessionCapabilities.delete(sid);
    if (!initialize || res.statusCode !== 200 || !newSid) return;
    return mcpRequestInfo(request, context).then((info) => {
      const msg = info.messages.find((m) => m.method === "initialize");
      if (!msg) return;
      const version = typeof msg.params?.protocolVersion === "string" ? msg.params.protocolVersion : info.protocolVersion;
      const caps = msg.params?.capabilities;
      sessionCapabilities.set(newSid, version, typeof caps === "object" && caps !== null ? (caps as Record<string, unknown>) : undefined);
    });
  }

  /** The client's response to an upstream answer; a promise only for a 202 (whose end it awaits). */
  function toResponse(
    res: UpstreamResponse,
    method: string,
    signal: UpstreamSignal,
    boundSid: string | undefined,
    obs: McpObservation | undefined,
    session: string | undefined,
  ): Response | Promise<Response> {
    obs?.answered();
    const entries = downstreamResponseHeaders(res.headers);
    if (boundSid !== undefined) {
      for (const entry of entries) if (entry[0] === "mcp-session-id") entry[1] = boundSid;
    }
    // undici refused the answer already if a field held anything Node cannot write back.
    const headers = HeaderMap.fromParsed(entries);
    if (method === "HEAD" || NULL_BODY.has(res.statusCode)) {
      discard(res);
      return new Response(null, { status: res.statusCode, headers });
    }
    // A 202 (accepted notification or response) has no body. Wait for its end and answer with
    // a complete, zero-length response in one write: SDK clients cancel a 202's body at once, and
    // cancelling one still in flight makes them drop the keep-alive connection.
    if (res.statusCode === 202) {
      return endsEmpty(res.body, signal).then((empty) => {
        if (!empty) return bodyResponse(res, method, headers, obs, session);
        headers.set("content-length", "0");
        return new Response(null, { status: 202, headers });
      });
    }
    return bodyResponse(res, method, headers, obs, session);
  }

  /** The client's response carrying the upstream's body. */
  function bodyResponse(res: UpstreamResponse, method: string, headers: HeaderMap, obs: McpObservation | undefined, session: string | undefined): Response {
    const contentType = headerValue(res.headers, "content-type");
    const sse = contentType?.startsWith("text/event-stream") === true;
    if (!sse) {
      // Usually all here already: the edge sends it whole, and the audit trail reads it whole.
      obs?.tapUpstreamBody(res.body, contentType);
      return nodeStreamResponse(res.body, { status: res.statusCode, headers });
    }
    const stream = res.body.stream();
    obs?.tapUpstreamBody(stream, contentType);
    // An SSE body goes through a relay that ends it when the upstream goes silent for too long;
    // the session's GET stream also carries the gateway's completion notifications.
    const getStream = method === "GET" && res.statusCode === 200 && session !== undefined;
    const body: Readable = options.idleTimeoutMs > 0 || getStream ? relay(stream, getStream ? session : undefined) : stream;
    return nodeStreamResponse(body, { status: res.statusCode, headers });
  }

  /** One exchange, in a client span when tracing. */
  function send(o: ExchangeOptions, policy: RedirectPolicy): Promise<UpstreamResponse> {
    const tracing = services.tracing;
    return tracing ? traced(tracing, o, policy) : exchangeOnce(o, policy);
  }

  /**
   * After a 401/403 from the upstream: asks the credential policy what to do, and retries once
   * with a new credential if it has one.
   */
  async function afterRefusal(res: UpstreamResponse, o: ExchangeOptions, policy: RedirectPolicy, context: GatewayContext, authenticated: boolean): Promise<UpstreamResponse | Response> {
    const outcome = await recover(res, context, false);
    if (outcome instanceof Response) return outcome;
    if (typeof outcome === "string") {
      // Later requests of this exchange (a deferred session's handshake, then the request) use it too.
      o.headers.authorization = outcome;
      res = await send(o, policy);
      if (isAuthRefusal(res)) {
        const again = await recover(res, context, true);
        if (again instanceof Response) return again;
      }
    }
    if (authenticated && isChallenge(res)) throw refusedCredentials(res, context);
    return res;
  }

  /** Sends one request; after a 401/403 asks the credential policy and retries once with a new credential. */
  async function sendWithRecovery(o: ExchangeOptions, policy: RedirectPolicy, context: GatewayContext, authenticated: boolean): Promise<UpstreamResponse | Response> {
    const res = await send(o, policy);
    return isAuthRefusal(res) ? afterRefusal(res, o, policy, context, authenticated) : res;
  }

  /**
   * The upstream session id behind a deferred session (started now when the request carries a
   * credential), or the answer for requests that cannot reach the upstream yet.
   */
  async function deferredUpstream(raw: string, o: ExchangeOptions, send: (x: ExchangeOptions) => Promise<UpstreamResponse | Response>, request: PipelineRequest, context: GatewayContext, clientSid: string): Promise<string | Response> {
    const sub = request.user!.sub;
    const routeId = context.route.operationId;
    const credentialed = context.upstreamHeaders.authorization !== undefined;
    if (request.method === "DELETE") {
      const current = await deferred.current(raw, routeId, sub);
      if (!current) {
        await deferred.drop(raw);
        sessionCapabilities.delete(clientSid);
        return new Response(null, { status: 200 });
      }
      return current;
    }
    if (!credentialed) {
      if (request.method === "GET") {
        if (!(await deferred.get(raw, routeId, sub))) throw new GatewayError("session_not_found", 404, "Session not found. Start a new session with an initialize request.");
        return holdSession(sessionKey(routeId, sub, clientSid), routeId);
      }
      const current = await deferred.current(raw, routeId, sub);
      if (current === undefined) throw new GatewayError("session_not_found", 404, "Session not found. Start a new session with an initialize request.");
      return current;
    }
    try {
      const version = sessionCapabilities.get(clientSid)?.version;
      const sid = await deferred.upstreamSession(raw, routeId, sub, (params) => startUpstreamSession(o, params, send, context.log, version));
      if (sid === undefined) throw new GatewayError("session_not_found", 404, "Session not found. Start a new session with an initialize request.");
      return sid;
    } catch (err) {
      if (err instanceof AnswerInstead) return err.response;
      throw err;
    }
  }

  async function mcpProxy(request: PipelineRequest, context: GatewayContext): Promise<Response> {
    const origin = request.headers.get("origin");
    if (origin !== null && !originAllowed(origin, request.headers.get("host") ?? "")) {
      throw new GatewayError("origin_not_allowed", 403, "Requests from this origin are not allowed.");
    }
    const method = request.method;
    const user = request.user;
    const routeId = context.route.operationId;
    // On authenticated routes the client holds `<upstream id>.<tag>`; only its own tag opens the
    // session. Anything else is answered like an unknown session, before the upstream is asked.
    let upstreamSid: string | undefined;
    let clientSid: string | null = null;
    if (user) {
      const sid = (clientSid = request.headers.get("mcp-session-id"));
      if (sid !== null) {
        upstreamSid = binder.unbind(sid, routeId, user.sub);
        if (upstreamSid === undefined) {
          throw new GatewayError("session_not_found", 404, "Session not found. Start a new session with an initialize request.");
        }
      }
    }
    let url = target.build(request);
    if (forwardSearch) url = appendSearch(url, searchOf(request.url));
    let body: Uint8Array | undefined;
    if (method !== "GET" && method !== "HEAD") {
      // A body that has arrived whole is taken without a microtask.
      const bytes = (request instanceof IncomingRequest ? request.bytesNow() : undefined) ?? (await request.rawBytes());
      if (bytes.byteLength > 0 || method === "POST") body = bytes;
    }
    // A batch is held to the gateway's bounds even where no policy read it (throws when beyond).
    if (body !== undefined && method === "POST" && isBatchBody(body)) await mcpRequestInfo(request, context);
    const obs = (context as ObservedContext)[OBSERVATION];
    // Where the audit trail reads the request's messages anyway, they are parsed now (and cached
    // for it) instead of scanning the bytes for an initialize.
    const initialize =
      method === "POST" &&
      body !== undefined &&
      !request.headers.has("mcp-session-id") &&
      (obs ? hasInitialize(parseMcpRequestInfo(request, body, context, true).messages) : Buffer.from(body.buffer, body.byteOffset, body.byteLength).includes(INITIALIZE));
    const signal = context[UPSTREAM_SIGNAL] ?? context.signal;
    const o: ExchangeOptions = {
      dispatcher,
      method,
      url,
      headers: upstreamRequestHeaders(
        request.headers,
        context.upstreamHeaders,
        forwarding(request, context),
        context.requestId,
        context.credentialHeaders,
      ),
      body,
      signal,
      firstByteTimeoutMs: options.firstByteTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      // Each exchange's duration counts as upstream time in the audit trail.
      timer: obs,
    };
    if (upstreamSid !== undefined) o.headers["mcp-session-id"] = upstreamSid;
    // A literal, not a spread: one object shape for every request.
    const policy: RedirectPolicy = { follow: redirects.follow, allowedOrigins: redirects.allowedOrigins, credentials: context.upstreamHeaders };
    obs?.forwarding(body);
    let deferredRaw: string | undefined;
    if (upstreamSid !== undefined && isDeferredSession(upstreamSid)) {
      deferredRaw = upstreamSid;
      const send = (x: ExchangeOptions) => sendWithRecovery(x, policy, context, user !== undefined);
      const started = await deferredUpstream(deferredRaw, o, send, request, context, clientSid!);
      if (started instanceof Response) return started;
      upstreamSid = started;
      if (upstreamSid) o.headers["mcp-session-id"] = upstreamSid;
      else delete o.headers["mcp-session-id"];
    }
    // `sendWithRecovery` written out: one async frame less per request.
    const sent = await send(o, policy);
    const res = isAuthRefusal(sent) ? await afterRefusal(sent, o, policy, context, user !== undefined) : sent;
    if (res instanceof Response) return res;
    if (deferredRaw !== undefined && (res.statusCode === 404 || (method === "DELETE" && res.statusCode < 300))) await deferred.drop(deferredRaw);
    const newSid = headerValue(res.headers, "mcp-session-id");
    // Upstreams repeat the session id on every answer: the client's own id is reused, so a request
    // costs one HMAC (the check above), and only a new session id is signed.
    const boundSid =
      user && newSid !== undefined ? (newSid === upstreamSid && clientSid !== null ? clientSid : binder.bind(newSid, routeId, user.sub)) : undefined;
    const remembering = remember(request, res, initialize, boundSid ?? newSid, context);
    if (remembering !== undefined) await remembering;
    const session = method === "GET" && user && clientSid !== null ? sessionKey(routeId, user.sub, clientSid) : undefined;
    return toResponse(res, method, signal, boundSid, obs, session);
  }

  return Object.assign(mcpProxy, {
    async close() {
      await own?.close().catch(() => {});
    },
  });
}
