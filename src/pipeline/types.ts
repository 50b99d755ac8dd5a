/**
 * The types every policy and handler sees. The shapes follow the project format's runtime
 * (`ZuploRequest`, `ZuploContext`): a policy is `(request, context, options, policyName)` and
 * returns either the (possibly new) request or a Response that ends the pipeline.
 */
import type { Logger } from "../log.js";
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
  request: GatewayRequest,
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

/** Per-request context (`ZuploContext`-compatible subset). */
export interface GatewayContext {
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
  /** Headers the proxy handler adds to the upstream request (upstream credentials). */
  readonly upstreamHeaders: Record<string, string>;
  /** Set by the upstream-credential policy; read by the MCP proxy. */
  upstreamAuth: UpstreamAuthHooks | undefined;
  addResponseSendingHook(hook: ResponseSendingHook): void;
  waitUntil(promise: Promise<unknown>): void;
}

export type InboundPolicy = (
  request: GatewayRequest,
  context: GatewayContext,
  options: unknown,
  policyName: string,
) => Promise<Request | Response> | Request | Response;

export type OutboundPolicy = (
  response: Response,
  request: GatewayRequest,
  context: GatewayContext,
  options: unknown,
  policyName: string,
) => Promise<Response> | Response;

export type Handler = (request: GatewayRequest, context: GatewayContext) => Promise<Response> | Response;

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
