/**
 * Node `http` ⇄ web `Request`/`Response` adapter. Request bodies are read only when the pipeline
 * asks for them (after the route's authentication) and then buffered (MCP messages are small and
 * the proxy may need to replay them); response bodies stream, with a zero-conversion path for
 * bodies that came straight from the upstream hop. The edge limits (`./limits.ts`) bound what a
 * client can make the process hold: time, header fields, body bytes, connections.
 */
import http from "node:http";
import { Readable } from "node:stream";
import { ClientDisconnect, IncomingRequest } from "../pipeline/types.js";
import { HeaderMap } from "../pipeline/header-map.js";
import { newRequestId } from "../pipeline/request-id.js";
import { attachWatcher, streamOf, takeWatcher, untouchedNodeBody } from "../pipeline/node-body.js";
import type { Gateway } from "../gateway.js";
import { errorToResponse, GatewayError } from "../errors.js";
import { requestTarget } from "./target.js";
import { arrived, BodyBudget, NodeRequestBody } from "./body.js";
import { closeAfterResponse } from "./linger.js";
import { DEFAULT_EDGE_LIMITS, type EdgeLimits } from "./limits.js";
import { ClientAddressResolver } from "./client-address.js";

export interface NodeServerOptions {
  /** Largest request body accepted, in bytes (413 beyond). */
  maxBodyBytes: number;
  /** Returns the gateway to use for a request (changes on `dev` reloads). */
  gateway: () => Gateway;
  /** Timeouts, caps and proxy trust of the edge; defaults: {@link DEFAULT_EDGE_LIMITS}. */
  limits?: Partial<EdgeLimits>;
}

const PIPED_TO = Symbol("tollgate.pipedTo");
const PIPED_FROM = Symbol("tollgate.pipedFrom");
const DISCONNECT = Symbol("tollgate.disconnect");
type PipedBody = Readable & { [PIPED_TO]: http.ServerResponse };
type PipedResponse = http.ServerResponse & { [PIPED_FROM]?: Readable; [DISCONNECT]?: ClientDisconnect };

// Listeners shared by every request (the emitter is their `this`): no closures per request.
function onPipedBodyError(this: PipedBody, err: Error): void {
  this[PIPED_TO].destroy(err);
}
function onResponseClose(this: PipedResponse): void {
  // The request's signal first (what the client's leaving means for the audit trail), then the body.
  if (!this.writableFinished) this[DISCONNECT]?.abort(new Error("client disconnected"));
  const body = this[PIPED_FROM];
  if (body && !body.readableEnded && !body.destroyed) body.destroy();
}

/**
 * Pipes a body into the response. An error on either side destroys the other: a failing
 * upstream body aborts the client's response (never a silently truncated one), a client that
 * goes away aborts the upstream body (the response's `close` listener, {@link onResponseClose}).
 * Hand-rolled rather than `stream.pipeline`, which allocates an AbortController (and a
 * DOMException) per call.
 */
function pipeBody(body: Readable, res: http.ServerResponse): void {
  attachWatcher(body);
  (body as PipedBody)[PIPED_TO] = res;
  (res as PipedResponse)[PIPED_FROM] = body;
  body.on("error", onPipedBodyError);
  body.pipe(res);
}

/**
 * Writes a web Response to a Node ServerResponse: the head now, the body streaming on its own.
 * Throws when the head cannot be written. Synchronous: no promise per response, and a response
 * that streams for hours (SSE) keeps no suspended frame.
 */
function writeResponse(res: http.ServerResponse, response: Response): void {
  let headers: Record<string, string | string[]>;
  const fields = response.headers;
  if (fields instanceof HeaderMap) headers = fields.toNodeHeaders();
  else {
    headers = {};
    fields.forEach((v, k) => {
      if (k !== "set-cookie") headers[k] = v;
    });
    const cookies = fields.getSetCookie();
    if (cookies.length) headers["set-cookie"] = cookies;
  }
  res.writeHead(response.status, headers);
  const source = untouchedNodeBody(response);
  if (!source && !response.body) {
    res.end();
    return;
  }
  const length = headers["content-length"];
  let nodeBody: Readable | undefined;
  if (source instanceof Readable) nodeBody = source;
  else if (source !== undefined) {
    // The upstream's answer, usually all here by now: sent in one write, without a stream. (Its
    // parser held it to its length; a length a policy set is written as set, as when streamed.)
    const whole = source.takeWhole();
    if (whole !== undefined) {
      res.end(whole);
      takeWatcher(source)?.whole(whole);
      return;
    }
    nodeBody = streamOf(source);
  }
  // A body of unknown length (SSE) may stay silent for a while: send the headers now. A body of
  // known length is on its way; its first chunk carries the headers in the same write.
  if (length === undefined) res.flushHeaders();
  else if (nodeBody && sendWhole(nodeBody, res, length)) return;
  pipeBody(nodeBody ?? Readable.fromWeb(response.body as never), res);
}

/**
 * Sends a body of known length that has wholly arrived already (an upstream's small JSON answer
 * usually comes in the same packet as its head) with one `end`, without the machinery of a pipe.
 * A watcher held on the body (the audit trail's tap) gets the bytes whole; reading them emits
 * `data` to anyone else listening and, once the body has ended, `end` and `close` as a piped
 * one would; it is resumed in case its end is still to come.
 * False (nothing done) when the body is not all there yet. Measured in one process, switching
 * between this and the pipe every second: about 5 µs of CPU less per request.
 */
function sendWhole(body: Readable, res: http.ServerResponse, length: string | string[]): boolean {
  const buffered = body.readableLength;
  if (buffered === 0 || body.readableFlowing === true || String(buffered) !== length) return false;
  const chunk = body.read() as Buffer | null;
  if (chunk === null) return false;
  (res as PipedResponse)[PIPED_FROM] = body;
  body.on("error", ignoreError);
  body.resume();
  res.end(chunk);
  takeWatcher(body)?.whole(chunk);
  return true;
}

// The body was sent whole: an error after that has nobody left to tell.
function ignoreError(): void {}

/** The running server's view of the edge: its limits and the buffered-bytes budget. */
export interface EdgeState {
  limits: EdgeLimits;
  budget: BodyBudget;
  /** Set when trusted proxies are configured. */
  clients: ClientAddressResolver | undefined;
}

const EDGE = Symbol.for("tollgate.edge");

/** The limits and body budget of a server made by {@link createNodeServer} (tests, metrics). */
export function edgeStateOf(server: http.Server): EdgeState {
  return (server as http.Server & { [EDGE]: EdgeState })[EDGE];
}

/**
 * Creates the Node HTTP server in front of a gateway. Timeouts apply to receiving a request, never
 * to sending the answer: a long SSE stream is not cut.
 */
export function createNodeServer(opts: NodeServerOptions): http.Server {
  const limits: EdgeLimits = { ...DEFAULT_EDGE_LIMITS, ...opts.limits };
  const clients = limits.trustedProxies.length ? new ClientAddressResolver(limits.trustedProxies, limits.forwardedHeader) : undefined;
  const edge: EdgeState = { limits, budget: new BodyBudget(limits.maxBufferedBodyBytes), clients };
  const server = http.createServer(
    {
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      // Node checks both timeouts on this interval; its default (30 s) would let them overrun by that much.
      connectionsCheckingInterval: Math.max(250, Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs || Infinity, 5_000) / 4),
    },
    (req, res) => {
      handle(req, res, opts, edge);
    },
  );
  // Node would keep 2,000 fields and drop the rest silently; take them all (their bytes are capped
  // by maxHeaderSize) and refuse more than the limit with 431.
  server.maxHeadersCount = 0;
  if (limits.maxConnections > 0) server.maxConnections = limits.maxConnections;
  // Answer `Expect: 100-continue` only when the body is read: a refused client never sends it.
  server.on("checkContinue", (req: http.IncomingMessage, res: http.ServerResponse) => server.emit("request", req, res));
  (server as http.Server & { [EDGE]: EdgeState })[EDGE] = edge;
  return server;
}

const tooManyHeaders = (n: number) =>
  new GatewayError("too_many_headers", 431, `The request has more than ${n} header fields.`);

/**
 * One request: builds the pipeline's request and hands it to the gateway, then {@link answer}s
 * with what comes back. Not an async function: a suspended frame per request (its register file
 * and promise) cost more than the two small callbacks that continue here.
 */
function handle(req: http.IncomingMessage, res: http.ServerResponse, opts: NodeServerOptions, edge: EdgeState): void {
  const gateway = opts.gateway();
  const disconnect = new ClientDisconnect();
  (res as PipedResponse)[DISCONNECT] = disconnect;
  res.on("close", onResponseClose);
  const method = req.method ?? "GET";
  const { limits } = edge;
  let body: NodeRequestBody | undefined;
  let pending: Promise<Response>;
  try {
    if (req.rawHeaders.length > limits.maxHeaderCount * 2) throw tooManyHeaders(limits.maxHeaderCount);
    const target = requestTarget(req.headers.host, req.url ?? "/");
    const headers = HeaderMap.fromRawHeaders(req.rawHeaders);
    if (target.authority !== undefined) headers.set("host", target.authority);
    if (method !== "GET" && method !== "HEAD" && hasBody(req)) {
      body = new NodeRequestBody(req, res, { maxBodyBytes: opts.maxBodyBytes, bodyIdleTimeoutMs: limits.bodyIdleTimeoutMs }, edge.budget);
    }
    const request = new IncomingRequest(method, target.url, headers, body, disconnect, target.path);
    const peer = req.socket.remoteAddress;
    const clientAddress = edge.clients ? edge.clients.resolve(peer, req.headers[limits.forwardedHeader] as string | undefined) : peer;
    pending = gateway.fetch(request, { remoteAddress: peer, clientAddress });
  } catch (err) {
    answer(req, res, edge, body, failed(err));
    return;
  }
  pending.then(
    (response) => answer(req, res, edge, body, response),
    (err: unknown) => answer(req, res, edge, body, failed(err)),
  );
}

/** The answer to a request whose handling threw. */
function failed(err: unknown): Response {
  return errorToResponse(err, { mcp: false, requestId: newRequestId() });
}

/** Sends the gateway's response (or the error that replaced it); never throws. */
function answer(req: http.IncomingMessage, res: http.ServerResponse, edge: EdgeState, body: NodeRequestBody | undefined, response: Response): void {
  body?.release();
  if (res.destroyed) {
    discardBody(response);
    return;
  }
  // Answered before the whole request arrived (refused, or over a limit): the rest of the body is
  // never read, so this connection cannot carry another request. A body that is all here already
  // — read whole, or still in the stream's buffer (a small body sent with the head: the parser
  // marks the request complete a little after handing it over) — is no such rest: Node drops what
  // is unread once the answer is out, and the connection carries the client's next request.
  if (body?.bytes === undefined && !arrived(req)) closeAfterResponse(req, res, edge.limits);
  // Written synchronously: the body streams on its own, and nothing of the request's handling
  // need live as long as it does.
  try {
    writeResponse(res, response);
  } catch (err) {
    // Headers Node refuses to write (an upstream's control characters, say): never a crash.
    discardBody(response);
    if (res.headersSent) res.destroy(err as Error);
    else {
      try {
        writeResponse(res, failed(new GatewayError("bad_response", 502, "The response could not be sent.")));
      } catch {
        res.destroy();
      }
    }
  }
}

/** True when the request announces a body (a length other than 0, or a transfer coding). */
function hasBody(req: http.IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return length !== undefined ? length !== "0" : req.headers["transfer-encoding"] !== undefined;
}

function discardBody(response: Response): void {
  const source = untouchedNodeBody(response);
  if (source) {
    takeWatcher(source)?.whole(undefined);
    source.destroy();
  } else void response.body?.cancel().catch(() => {});
}
