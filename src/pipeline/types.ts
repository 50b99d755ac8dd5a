/**
 * The types every policy and handler sees. The shapes follow the project format's runtime
 * (`ZuploRequest`, `ZuploContext`): a policy is `(request, context, options, policyName)` and
 * returns either the (possibly new) request or a Response that ends the pipeline.
 */
import type { Logger } from "../log.js";
import { HeaderMap } from "./header-map.js";
import type { GatewayServices } from "./services.js";

/** The authenticated caller, set by inbound auth policies. */
export interface UserInfo {
  sub: string;
  data: Record<string, unknown>;
}

const RAW_BODY = Symbol("tollgate.rawBody");
const internalBody = Object.getOwnPropertyDescriptor(Request.prototype, "body")!.get!;

/** A one-shot stream over bytes the request holds. */
function bytesStream(bytes: Uint8Array, onPull: () => void): ReadableStream<Uint8Array<ArrayBuffer>> {
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller) {
      onPull();
      controller.enqueue(bytes.slice());
      controller.close();
    },
  });
}

/**
 * A web-standard Request plus what the pipeline adds: `user`, path `params`, `query`.
 * The raw body bytes are kept so a handler can forward (and replay) them without consuming
 * the stream a policy might also read.
 *
 * Cheap on the hot path: when the gateway holds the body bytes (`rawBody`), they are not handed
 * to the underlying web Request; `body`, `text()`, `json()`, … serve them on demand, so no web
 * stream exists unless someone asks for one. Likewise a given `signal` is returned as is instead
 * of being mirrored into a new one. (A body-carrying request passed to `fetch(request)` or used
 * as the *input* of `new Request(request)` therefore has no body there: pass `request.body`.)
 */
export class GatewayRequest extends Request {
  user: UserInfo | undefined;
  params: Record<string, string>;
  query: Record<string, string>;
  [RAW_BODY]: Uint8Array | undefined;
  /** True when the body lives only in RAW_BODY (the web Request itself has none). */
  #held = false;
  #heldStream: ReadableStream<Uint8Array<ArrayBuffer>> | undefined;
  #heldUsed = false;
  #signal: AbortSignal | undefined;

  constructor(
    input: RequestInfo | URL,
    init: RequestInit & {
      user?: UserInfo;
      params?: Record<string, string>;
      query?: Record<string, string>;
      rawBody?: Uint8Array;
    } = {},
  ) {
    const source = input instanceof GatewayRequest ? input : undefined;
    const raw = init.rawBody ?? (init.body === undefined ? source?.[RAW_BODY] : undefined);
    const method = (init.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
    const bodyless = method === "GET" || method === "HEAD";
    const inputHasBody = input instanceof Request && internalBody.call(input) !== null;
    // Hold the bytes ourselves when nothing else would give the web Request a body.
    const hold = raw !== undefined && init.body === undefined && !bodyless && !inputHasBody;
    const signal = init.signal ?? (source ? source.#signal : undefined);
    const superInit: RequestInit = { ...init };
    if (init.rawBody !== undefined && !hold && init.body === undefined && !bodyless) superInit.body = init.rawBody as BodyInit;
    if (signal) delete superInit.signal;
    super(input, superInit);
    this.user = init.user ?? source?.user;
    this.params = init.params ?? source?.params ?? {};
    this.query = init.query ?? source?.query ?? {};
    this[RAW_BODY] = bodyless ? undefined : raw;
    this.#held = hold;
    this.#signal = signal ?? undefined;
  }

  override get signal(): AbortSignal {
    return this.#signal ?? super.signal;
  }

  override get body(): Request["body"] {
    if (!this.#held) return super.body;
    return (this.#heldStream ??= bytesStream(this[RAW_BODY]!, () => (this.#heldUsed = true)));
  }

  override get bodyUsed(): boolean {
    return this.#held ? this.#heldUsed : super.bodyUsed;
  }

  /** The held bytes, once (like reading a body). */
  #take(): Uint8Array {
    if (this.#heldUsed || this.#heldStream?.locked) throw new TypeError("Body is unusable: Body has already been read");
    this.#heldUsed = true;
    return this[RAW_BODY]!;
  }

  override async arrayBuffer(): Promise<ArrayBuffer> {
    if (!this.#held) return super.arrayBuffer();
    return this.#take().slice().buffer as ArrayBuffer;
  }

  override async text(): Promise<string> {
    if (!this.#held) return super.text();
    return new TextDecoder().decode(this.#take());
  }

  override async json(): Promise<any> {
    if (!this.#held) return super.json();
    return JSON.parse(await this.text());
  }

  override async blob(): Promise<Blob> {
    if (!this.#held) return super.blob();
    return new Blob([this.#take().slice()], { type: this.headers.get("content-type") ?? "" });
  }

  override async formData(): Promise<FormData> {
    if (!this.#held) return super.formData();
    return new Response(this.#take().slice(), { headers: { "content-type": this.headers.get("content-type") ?? "" } }).formData();
  }

  override clone(): GatewayRequest {
    if (!this.#held) return new GatewayRequest(super.clone(), { user: this.user, params: this.params, query: this.query, signal: this.#signal });
    if (this.bodyUsed) throw new TypeError("Body is unusable: Body has already been read");
    return new GatewayRequest(this as Request);
  }

  /** The request body as bytes, without disturbing `body` when the gateway already holds them. */
  async rawBytes(): Promise<Uint8Array> {
    const raw = this[RAW_BODY];
    if (raw) return raw;
    if (this.body === null) return new Uint8Array(0);
    const buf = new Uint8Array(await this.clone().arrayBuffer());
    this[RAW_BODY] = buf;
    return buf;
  }
}

/**
 * What the gateway's own policies and handlers read from a request. Both request kinds satisfy
 * it: {@link IncomingRequest} (built by the Node adapter, cheap) and {@link GatewayRequest} (a real
 * web `Request`, what project code gets). Built-in code must not need more than this, so a route
 * made only of built-ins never pays for a web `Request`.
 */
export interface PipelineRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Headers;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
  user: UserInfo | undefined;
  params: Record<string, string>;
  query: Record<string, string>;
  /** The body as bytes; reading them does not consume the body. */
  rawBytes(): Promise<Uint8Array>;
  text(): Promise<string>;
  json(): Promise<any>;
}

/**
 * The client going away, as the upstream hop's HTTP client listens for it (an event emitter with
 * `aborted`/`reason`), with a web `AbortSignal` made only when someone asks for one. A web signal
 * per request was the largest single cost on the proxy's path.
 */
export class ClientDisconnect {
  aborted = false;
  reason: unknown = undefined;
  #listeners: Array<() => void> | undefined;
  #controller: AbortController | undefined;

  on(_event: "abort", listener: () => void): this {
    (this.#listeners ??= []).push(listener);
    return this;
  }

  /** Same as `on`: "abort" happens once. */
  once(event: "abort", listener: () => void): this {
    return this.on(event, listener);
  }

  removeListener(_event: "abort", listener: () => void): this {
    const list = this.#listeners;
    const i = list ? list.indexOf(listener) : -1;
    if (i >= 0) list!.splice(i, 1);
    return this;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const list = this.#listeners;
    this.#listeners = undefined;
    if (list) for (const l of list) l();
    this.#controller?.abort(reason);
  }

  /** A web AbortSignal that follows this disconnect (created on first use). */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }
}

/** A signal the upstream hop can listen on: a web AbortSignal or a {@link ClientDisconnect}. */
export type UpstreamSignal = AbortSignal | ClientDisconnect;

const decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);

/**
 * A request body read on first use (the Node adapter's, see `src/server/body.ts`): the route's
 * authentication runs before a single body byte is buffered. `read()` returns the same promise
 * every time; `bytes` is set once it resolved.
 */
export interface LazyBody {
  read(): Promise<Uint8Array>;
  readonly bytes: Uint8Array | undefined;
  /** The bytes without waiting, if they can be had so (see `NodeRequestBody.readNow`). */
  readNow?(): Uint8Array | undefined;
}

/**
 * Where the MCP layer keeps a request's parsed messages once it has parsed them
 * (`mcpRequestInfo` in src/mcp/messages.ts).
 */
export const MCP_INFO = Symbol.for("tollgate.mcpInfo");

/**
 * The request as the Node adapter hands it to the pipeline: method, URL, the parsed header
 * fields (a {@link HeaderMap}, not re-validated) and the body (bytes, or a {@link LazyBody} not
 * read until someone asks), with no web `Request`, web stream or `AbortSignal` behind it. When
 * project code is about to see the request, the pipeline turns it into a {@link GatewayRequest}
 * once ({@link webRequestOf}), after reading the body.
 */
export class IncomingRequest implements PipelineRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: HeaderMap;
  user: UserInfo | undefined = undefined;
  params: Record<string, string> = {};
  query: Record<string, string> = {};
  readonly disconnect: ClientDisconnect;
  #body: Uint8Array | LazyBody | undefined;
  #web: GatewayRequest | undefined;
  /**
   * The parsed MCP messages, when parsed. Declared so every request has one shape from its
   * construction: a slot added later (as on any other object) gave requests two hidden classes,
   * parsed or not, and the code that sees both ran slower throughout the request path.
   */
  [MCP_INFO]: unknown = undefined;

  /** The URL's pathname when the edge knew it without parsing the URL (`RequestTarget.path`). */
  readonly path: string | undefined;

  constructor(method: string, url: string, headers: HeaderMap, body: Uint8Array | LazyBody | undefined, disconnect: ClientDisconnect, path?: string) {
    this.method = method;
    this.url = url;
    this.path = path;
    this.headers = headers;
    this.#body = method === "GET" || method === "HEAD" ? undefined : body;
    this.disconnect = disconnect;
  }

  get signal(): AbortSignal {
    return this.disconnect.signal;
  }

  rawBytes(): Promise<Uint8Array> {
    const b = this.#body;
    if (b === undefined) return Promise.resolve(EMPTY);
    if (b instanceof Uint8Array) return Promise.resolve(b);
    return b.read();
  }

  async text(): Promise<string> {
    return decoder.decode(await this.rawBytes());
  }

  async json(): Promise<any> {
    return JSON.parse(await this.text());
  }

  /** The same request with other headers and/or body (and the same user, params, query, signal). */
  with(changes: { headers?: Headers; rawBody?: Uint8Array }): IncomingRequest {
    const headers = changes.headers === undefined ? this.headers : changes.headers instanceof HeaderMap ? changes.headers : new HeaderMap(changes.headers);
    const next = new IncomingRequest(this.method, this.url, headers, changes.rawBody ?? this.#body, this.disconnect, this.path);
    next.user = this.user;
    next.params = this.params;
    next.query = this.query;
    return next;
  }

  /**
   * The body's bytes without waiting: those at hand, or the whole body when it has arrived and
   * can be read now; undefined when {@link rawBytes} must wait (or will reject).
   */
  bytesNow(): Uint8Array | undefined {
    return this.bytesIfRead ?? (this.#body as LazyBody).readNow?.();
  }

  /** The body's bytes when they are at hand (no body: empty), else undefined (not read yet). */
  get bytesIfRead(): Uint8Array | undefined {
    const b = this.#body;
    if (b === undefined) return EMPTY;
    return b instanceof Uint8Array ? b : b.bytes;
  }

  /** True while the body has not been read yet (then {@link toWebRequest} must wait for it). */
  get bodyPending(): boolean {
    const b = this.#body;
    return b !== undefined && !(b instanceof Uint8Array) && b.bytes === undefined;
  }

  /** The web Request project code sees, built once; the body must have been read (see {@link webRequestReady}). */
  toWebRequest(): GatewayRequest {
    if (this.#web) return this.#web;
    const b = this.#body;
    const bytes = b === undefined || b instanceof Uint8Array ? b : b.bytes;
    if (b !== undefined && bytes === undefined) throw new Error("IncomingRequest.toWebRequest: the body has not been read yet");
    return (this.#web = gatewayRequestFrom(this, this.headers, bytes));
  }
}

/** Like {@link webRequestOf}, reading a pending body first. */
export async function webRequestReady(request: PipelineRequest | Request): Promise<GatewayRequest> {
  if (request instanceof IncomingRequest && request.bodyPending) await request.rawBytes();
  return webRequestOf(request);
}

/** A real web `Request` for code that expects one (project modules, pages, CORS). */
export function webRequestOf(request: PipelineRequest | Request): GatewayRequest {
  if (request instanceof GatewayRequest) return request;
  if (request instanceof IncomingRequest) return request.toWebRequest();
  return new GatewayRequest(request as Request);
}

/**
 * The same request with other headers and/or body, of the same kind (built-in policies that
 * rewrite a request use this, so the cheap kind stays cheap).
 */
export function deriveRequest(request: PipelineRequest, changes: { headers?: Headers; rawBody: Uint8Array }): PipelineRequest {
  if (request instanceof IncomingRequest) return request.with(changes);
  return gatewayRequestFrom(request, changes.headers ?? request.headers, changes.rawBody);
}

/** A GatewayRequest with the method, URL, user, params, query and signal of `source`. */
function gatewayRequestFrom(source: PipelineRequest, headers: Headers, rawBody: Uint8Array | undefined): GatewayRequest {
  return new GatewayRequest(source.url, {
    method: source.method,
    headers,
    rawBody,
    user: source.user,
    params: source.params,
    query: source.query,
    signal: source.signal,
  });
}

/**
 * Re-wraps whatever a custom policy returned into a GatewayRequest, keeping user/params/query.
 * A plain `new Request(request, init)` built from a request whose body the gateway held has no
 * body of its own; the held bytes are carried over.
 */
export function asGatewayRequest(req: Request, previous: GatewayRequest): GatewayRequest {
  if (req instanceof GatewayRequest) return req;
  const carry = req.body === null && req.method === previous.method ? previous[RAW_BODY] : undefined;
  return new GatewayRequest(req, { user: previous.user, params: previous.params, query: previous.query, rawBody: carry });
}

/** A hook that sees (and may replace) the final response just before it is sent. */
export type ResponseSendingHook = (
  response: Response,
  request: PipelineRequest,
  context: GatewayContext,
) => Response | Promise<Response>;

/** An upstream 401/403 as the MCP proxy reports it to {@link UpstreamAuthHooks}. */
export interface UpstreamChallenge {
  status: number;
  wwwAuthenticate: string | undefined;
  /**
   * True when the upstream refused the one retry made with the value a hook returned: the
   * fresh credential does not work either. A string returned now is ignored (one retry per request).
   */
  retried?: boolean;
}

/**
 * Lets the upstream-credential policy react to the upstream's auth answers.
 * The MCP proxy calls these; see `src/policies/mcp-token-exchange-inbound/`.
 *
 * When no hook answers, the proxy passes the upstream's 401 (and 403 with a challenge) through
 * on anonymous routes only; where the gateway authenticated the caller (`request.user`), it
 * answers 502 `upstream_auth_failed` instead, so a client never follows the upstream's
 * `WWW-Authenticate` to the upstream's authorization server.
 */
export interface UpstreamAuthHooks {
  /**
   * The upstream answered 401. Return a fresh `Authorization` value to retry the request once,
   * a Response to answer the client with instead, or undefined to let the proxy answer.
   * Called a second time, with `retried: true`, when the retry is refused again.
   */
  onUnauthorized(challenge: UpstreamChallenge): Promise<string | Response | undefined>;
  /** The upstream answered 403 (e.g. insufficient_scope). Same contract as onUnauthorized. */
  onForbidden?(challenge: UpstreamChallenge): Promise<string | Response | undefined>;
}

/**
 * Where the gateway's own upstream hop finds the cheap form of the client-abort signal
 * ({@link ClientDisconnect}); code that wants a web AbortSignal uses `context.signal`.
 */
export const UPSTREAM_SIGNAL = Symbol("tollgate.upstreamSignal");

/** Per-request context (`ZuploContext`-compatible subset). */
export interface GatewayContext {
  readonly [UPSTREAM_SIGNAL]?: UpstreamSignal;
  readonly requestId: string;
  readonly log: Logger;
  readonly route: RouteConfig;
  /** Free-form per-request storage for policies and handlers. */
  readonly custom: Record<string, unknown>;
  /** Aborted when the client goes away; handlers pass it to the upstream request. */
  readonly signal: AbortSignal;
  readonly services: GatewayServices;
  /** Address of the TCP peer when known (the Node adapter sets it; in-process calls may not). */
  readonly remoteAddress: string | undefined;
  /**
   * The client's address: the peer's, or the one a trusted reverse proxy reports
   * (`TOLLGATE_TRUSTED_PROXIES`). Per-client limits key on this. Absent means `remoteAddress`.
   */
  readonly clientAddress?: string | undefined;
  /** Headers the proxy handler adds to the upstream request (upstream credentials). */
  readonly upstreamHeaders: Record<string, string>;
  /** Set by the upstream-credential policy; read by the MCP proxy. */
  upstreamAuth: UpstreamAuthHooks | undefined;
  /**
   * Inbound header fields (lower-case) that a policy consumed as the caller's credential. The
   * MCP proxy never forwards them (nor `Authorization` and `Cookie`, which it never forwards at all).
   *
   * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices#token-passthrough
   */
  readonly credentialHeaders: ReadonlySet<string>;
  /**
   * Marks an inbound header as the caller's credential, so it never reaches the upstream. Auth
   * policies call it for the header they read, before checking the value; custom policies that
   * authenticate from a header of their own should too.
   */
  consumeCredentialHeader(name: string): void;
  addResponseSendingHook(hook: ResponseSendingHook): void;
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * A built-in inbound policy. It sees a {@link PipelineRequest} and returns the (possibly new)
 * request or a Response that ends the pipeline.
 */
export type InboundPolicy = (
  request: PipelineRequest,
  context: GatewayContext,
  options: unknown,
  policyName: string,
) => Promise<PipelineRequest | Response> | PipelineRequest | Response;

export type OutboundPolicy = (
  response: Response,
  request: PipelineRequest,
  context: GatewayContext,
  options: unknown,
  policyName: string,
) => Promise<Response> | Response;

export type Handler = (request: PipelineRequest, context: GatewayContext) => Promise<Response> | Response;

/** `{ module, export, options }` as written in the project files, after `$import`/`$env` handling. */
export interface HandlerRef {
  module: string;
  export: string;
  options: Record<string, unknown>;
}

/** One route of `config/routes.oas.json` after loading. */
export interface RouteConfig {
  path: string;
  methods: string[];
  operationId: string;
  corsPolicy: string | undefined;
  handler: HandlerRef;
  policies: { inbound: string[]; outbound: string[] };
  /** True when the handler is the MCP proxy (errors become JSON-RPC where they carry an rpc code). */
  mcp: boolean;
}

/** One entry of `config/policies.json`. */
export interface PolicyConfig {
  name: string;
  policyType: string;
  handler: HandlerRef;
}
