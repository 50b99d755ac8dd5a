/**
 * Responses whose body is a Node stream (the upstream hop's), exposed to policies as a normal
 * web `Response` but sent by the Node adapter without converting to web streams and back —
 * unless something in the pipeline actually touched the web body.
 *
 * The web side is created lazily: until a policy reads `body`, `text()`, `json()`, … (or
 * clones the response) no `ReadableStream` exists at all, which keeps the proxy's hot path free
 * of web-stream allocations.
 */
import { Readable } from "node:stream";
import { inspect } from "node:util";
import { HeaderMap } from "./header-map.js";

const NODE_BODY = Symbol.for("tollgate.nodeBody");

/**
 * A body that may have arrived whole before anyone reads it (the upstream hop's, see
 * `UpstreamBody`): the edge takes such a body in one piece, and only a reader that streams it
 * makes a Node stream of it.
 */
export interface ArrivingBody {
  /** The whole body, when it has arrived and nobody streams it; taking it consumes it. */
  takeWhole(): Buffer | undefined;
  /** The body as a Node stream (the same one on every call). */
  stream(): Readable;
  /** Drops the body. */
  destroy(): void;
}

/** What a {@link NodeBodyResponse} carries: a Node stream, or a body that makes one when asked. */
export type NodeBodySource = Readable | ArrivingBody;

/** The Node stream of a body source; a watcher held on the source moves to the stream. */
export function streamOf(source: NodeBodySource): Readable {
  if (source instanceof Readable) return source;
  const stream = source.stream();
  const watcher = takeWatcher(source);
  if (watcher !== undefined) holdWatcher(stream, watcher);
  return stream;
}

interface State {
  source: NodeBodySource;
  /** The web view of the body, once someone asked for it. */
  web: ReadableStream<Uint8Array<ArrayBuffer>> | undefined;
  /** Set when the web view was read from or cancelled. */
  used: boolean;
}

interface Tagged {
  [NODE_BODY]?: State;
}

interface Source {
  next(): Promise<IteratorResult<Uint8Array>>;
  cancel(reason: unknown): Promise<void> | void;
}

/**
 * A web stream that pulls nothing until read (highWaterMark 0). Reading it marks the response
 * used only while it is the response's current view (a clone's tee also reads the old one).
 */
function view(state: State, source: Source): ReadableStream<Uint8Array<ArrayBuffer>> {
  const v: ReadableStream<Uint8Array<ArrayBuffer>> = new ReadableStream<Uint8Array<ArrayBuffer>>(
    {
      async pull(controller) {
        if (state.web === v) state.used = true;
        const { value, done } = await source.next();
        if (done) controller.close();
        else controller.enqueue(new Uint8Array(value.buffer as ArrayBuffer, value.byteOffset, value.byteLength));
      },
      cancel(reason) {
        if (state.web === v) state.used = true;
        return source.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return v;
}

/** The first web view: straight over the Node stream. */
function nodeView(state: State): ReadableStream<Uint8Array<ArrayBuffer>> {
  let iterator: AsyncIterator<Buffer> | undefined;
  return view(state, {
    next: () => (iterator ??= streamOf(state.source)[Symbol.asyncIterator]()).next(),
    // No error: the consumer lost interest, and nobody may be listening for one on the Node side.
    cancel: () => void state.source.destroy(),
  });
}

/**
 * The base of {@link NodeBodyResponse}: its prototype is `Response.prototype` (so the response is
 * `instanceof Response`), but constructing it builds none of undici's internal response state —
 * a NodeBodyResponse overrides every accessor and method of `Response`, so it never reads it.
 */
function ResponseBase(): void {}
ResponseBase.prototype = Response.prototype;

/**
 * A Response whose body is a Node stream until someone reads it the web way, and whose headers
 * are a {@link HeaderMap} over fields the upstream's HTTP parser already validated.
 */
class NodeBodyResponse extends (ResponseBase as unknown as typeof Response) {
  readonly [NODE_BODY]: State;
  readonly #headers: HeaderMap;
  readonly #status: number;

  constructor(source: NodeBodySource, status: number, headers: HeaderMap) {
    super();
    if (!Number.isInteger(status) || status < 200 || status > 599) throw new RangeError(`Invalid response status code ${status}`);
    this[NODE_BODY] = { source, web: undefined, used: false };
    this.#headers = headers;
    this.#status = status;
  }

  override get type(): ResponseType {
    return "default";
  }

  override get url(): string {
    return "";
  }

  override get redirected(): boolean {
    return false;
  }

  override get status(): number {
    return this.#status;
  }

  override get ok(): boolean {
    return this.#status >= 200 && this.#status <= 299;
  }

  override get statusText(): string {
    return "";
  }

  override get headers(): Headers {
    return this.#headers;
  }

  override get body(): Response["body"] {
    const s = this[NODE_BODY];
    if (s.web === undefined) {
      attachWatcher(streamOf(s.source));
      s.web = nodeView(s);
    }
    return s.web;
  }

  override get bodyUsed(): boolean {
    return this[NODE_BODY].used;
  }

  /** A plain Response over the web view, for the body-reading methods. */
  #reader(): Response {
    if (this.bodyUsed || this.body?.locked) throw new TypeError("Body is unusable: Body has already been read");
    return new Response(this.body, { headers: this.headers });
  }

  override async arrayBuffer(): Promise<ArrayBuffer> {
    return this.#reader().arrayBuffer();
  }

  override async text(): Promise<string> {
    return this.#reader().text();
  }

  override async json(): Promise<any> {
    return this.#reader().json();
  }

  override async blob(): Promise<Blob> {
    return this.#reader().blob();
  }

  override async formData(): Promise<FormData> {
    return this.#reader().formData();
  }

  override async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    return new Uint8Array(await this.#reader().arrayBuffer());
  }

  [inspect.custom](): string {
    return `Response ${inspect({ status: this.#status, headers: this.#headers, bodyUsed: this.bodyUsed })}`;
  }

  override clone(): Response {
    if (this.bodyUsed || this.body?.locked) throw new TypeError("Response.clone: Body has already been consumed.");
    const [mine, theirs] = this.body!.tee();
    const reader = mine.getReader();
    const s = this[NODE_BODY];
    s.web = view(s, { next: () => reader.read() as Promise<IteratorResult<Uint8Array>>, cancel: (r) => reader.cancel(r) });
    return new Response(theirs, { status: this.status, statusText: this.statusText, headers: this.headers });
  }
}

/**
 * Something that watches a body's bytes as they pass (the audit trail's tap), held on the Node
 * stream until the body's reader is known: a reader that streams it calls `attach` first (the
 * watcher then listens to the stream itself); one that takes the body whole at once hands it
 * over with `whole`, and one that drops it unread says so with `whole(undefined)`. A body read
 * whole in one go thus costs the watcher no listeners and no events.
 */
export interface HeldWatcher {
  attach(stream: Readable): void;
  whole(bytes: Buffer | undefined): void;
}

const WATCHER = Symbol("tollgate.heldWatcher");
type Watched = NodeBodySource & { [WATCHER]?: HeldWatcher | undefined };

/** Holds `watcher` on a body until its reader takes it ({@link takeWatcher}, {@link attachWatcher}). */
export function holdWatcher(body: NodeBodySource, watcher: HeldWatcher): void {
  (body as Watched)[WATCHER] = watcher;
}

/** The watcher held on a body, now the caller's to feed; undefined when there is none. */
export function takeWatcher(body: NodeBodySource): HeldWatcher | undefined {
  const w = (body as Watched)[WATCHER];
  if (w !== undefined) (body as Watched)[WATCHER] = undefined;
  return w;
}

/** The stream is about to be read as a stream: the held watcher (if any) starts listening. */
export function attachWatcher(stream: Readable): void {
  takeWatcher(stream)?.attach(stream);
}

/** Wraps a Node readable (or an arriving body) as a Response body (no web stream is created until one is needed). */
export function nodeStreamResponse(source: NodeBodySource, init: { status: number; headers?: HeadersInit }): Response {
  const headers = init.headers instanceof HeaderMap ? init.headers : new HeaderMap(init.headers);
  return new NodeBodyResponse(source, init.status, headers);
}

/** The untouched body behind a response, if the fast path is still available. */
export function untouchedNodeBody(res: Response): NodeBodySource | undefined {
  const state = (res as Response & Tagged)[NODE_BODY];
  if (!state || state.web !== undefined || state.used) return undefined;
  return state.source;
}
