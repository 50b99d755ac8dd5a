/**
 * Request bodies read only when something needs them. The Node adapter hands the pipeline a
 * {@link NodeRequestBody}; nothing is read from the socket until a policy or the handler asks
 * for the bytes, so a route's authentication (which needs only header fields) runs first and an
 * unauthenticated client's body is never buffered. While unread, the body waits in the socket
 * (Node stops reading the connection after its 16 KiB stream buffer), costing no memory.
 *
 * Reading is bounded three ways: the per-request limit (413), a process-wide budget of buffered
 * request bytes shared by all requests (503 with `Retry-After`), and the longest pause between
 * two pieces of the body (408).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-15.5.14 413 Content Too Large
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-10.1.1 Expect: 100-continue
 */
import { Buffer } from "node:buffer";
import type http from "node:http";
import { GatewayError } from "../errors.js";
import type { LazyBody } from "../pipeline/types.js";

/** Request bytes buffered by the whole process, against a cap. */
export class BodyBudget {
  /** Bytes currently held by requests. */
  used = 0;
  constructor(public limit: number) {}

  /** Counts `n` more bytes; false (and nothing counted) when that would pass the cap. */
  take(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used -= n;
  }
}

export interface BodyLimits {
  maxBodyBytes: number;
  bodyIdleTimeoutMs: number;
}

const EXPECT_CONTINUE = /^100-continue$/i;
const EMPTY = Buffer.alloc(0);

const tooLarge = (limit: number) => new GatewayError("body_too_large", 413, `Request body exceeds ${limit} bytes.`);
const overloaded = () =>
  new GatewayError("overloaded", 503, "The gateway is buffering too many request bodies; retry shortly.", {
    headers: { "retry-after": "1" },
  });

/** The body of one Node request, read on first use. */
export class NodeRequestBody implements LazyBody {
  /** The bytes, once read. */
  bytes: Uint8Array | undefined = undefined;
  /** Set when reading stopped before the end (limit, budget, timeout, client gone). */
  failed = false;
  #promise: Promise<Uint8Array> | undefined;
  #held = 0;
  #released = false;
  #declared = -1;
  #size = 0;
  #chunks: Buffer[] | undefined;
  /** The idle sweep watching this read, while one runs. */
  #sweep: IdleSweep | undefined;
  /** @internal The sweep's tick when a piece of the body last arrived. */
  activeAt = 0;
  #resolve: ((bytes: Uint8Array) => void) | undefined;
  #reject: ((err: GatewayError) => void) | undefined;
  /** Set once {@link #read} waited a microtask for the body to arrive. */
  #deferred = false;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly limits: BodyLimits,
    private readonly budget: BodyBudget,
  ) {}

  read(): Promise<Uint8Array> {
    return (this.#promise ??= this.#read());
  }

  /**
   * The bytes without waiting when the whole body has arrived (reading it now if nobody has);
   * undefined when they are still to come or were refused — then {@link read} tells which.
   */
  readNow(): Uint8Array | undefined {
    if (this.bytes === undefined && this.#promise === undefined && this.req.complete) this.#promise = this.#read();
    return this.bytes;
  }

  /** True once reading started (the body was asked for). */
  get started(): boolean {
    return this.#promise !== undefined;
  }

  /** Gives the buffered bytes back to the budget (the pipeline is done with them). Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.budget.give(this.#held);
    this.#held = 0;
  }

  #hold(n: number): boolean {
    if (this.#released) return true;
    if (!this.budget.take(n)) return false;
    this.#held += n;
    return true;
  }

  #read(): Promise<Uint8Array> {
    const started = this.#start();
    return started instanceof Uint8Array ? Promise.resolve(started) : started;
  }

  /** Reads the body: its bytes when they were taken at once, else a promise of them. */
  #start(): Uint8Array | Promise<Uint8Array> {
    const { req, res, limits } = this;
    const limit = limits.maxBodyBytes;
    const declared = declaredLength(req);
    if (declared > limit) return this.#fail(tooLarge(limit));
    // Asked for while the request's head is still being handled (the route's policies answered
    // synchronously), a small body usually came in the same packet: the HTTP parser hands it to
    // the request as soon as the 'request' listeners return, before the next microtask runs (it
    // marks the request complete only later). Looking again then takes it from the stream's
    // buffer, instead of setting up four listeners, a promise and the idle sweep and having it
    // emitted as events. A body still to come is read as it arrives.
    const whole = arrived(req, declared);
    if (!this.#deferred && !whole) {
      this.#deferred = true;
      // A microtask later. The bytes themselves when they were taken then: a promise would cost
      // the caller two more microtasks to adopt. (A closure rather than `Promise.resolve(this)`:
      // resolving a promise with an object looks up its `then` along the prototype chain.)
      return RESOLVED.then(() => this.#start());
    }
    if (declared > 0 && !this.#hold(declared)) return this.#fail(overloaded());
    this.#declared = declared;
    // A body that has arrived whole is taken from the stream's buffer at once.
    if (whole && req.readableFlowing !== true && !req.readableEnded) return this.#take();
    // The client waits for this before sending a body; an answer without reading never sends it.
    if (EXPECT_CONTINUE.test(req.headers.expect ?? "") && !res.headersSent) res.writeContinue();
    // Read as it arrives. The listeners are functions shared by all requests (the request is their
    // `this`), so reading a body allocates no closures.
    const promise = new Promise<Uint8Array>(captureSettlers);
    this.#resolve = settlers.resolve;
    this.#reject = settlers.reject;
    (req as Reading)[READER] = this;
    req.on("data", onBodyData);
    req.on("end", onBodyEnd);
    req.on("error", onBodyError);
    req.on("close", onBodyClose);
    if (limits.bodyIdleTimeoutMs > 0) (this.#sweep = idleSweep(limits.bodyIdleTimeoutMs)).watch(this);
    return promise;
  }

  /**
   * Counts `n` more bytes of the body against the limit and (without a declared length, whose
   * bytes were held up front) the process-wide budget; the error when they do not fit.
   */
  #admit(n: number): GatewayError | undefined {
    this.#size += n;
    if (this.#size > this.limits.maxBodyBytes) return tooLarge(this.limits.maxBodyBytes);
    if (this.#declared < 0 && n > 0 && !this.#hold(n)) return overloaded();
    return undefined;
  }

  /** The whole body from the stream's buffer (the request is complete). */
  #take(): Uint8Array | Promise<Uint8Array> {
    const req = this.req;
    const refused = this.#admit(req.readableLength);
    if (refused) return this.#fail(refused);
    let bytes: Buffer = (req.read() as Buffer | null) ?? EMPTY;
    let next: Buffer | null;
    while ((next = req.read() as Buffer | null) !== null) bytes = Buffer.concat([bytes, next]);
    // Taken before the parser marked the request complete: let the stream flow, so its end is
    // consumed (and `end` emitted) when it comes, as for a body read to the end.
    if (!req.complete) req.resume();
    this.bytes = bytes;
    return bytes;
  }

  /** @internal One piece of the body arrived. */
  onData(c: Buffer): void {
    const refused = this.#admit(c.length);
    if (refused) return this.onFailure(refused);
    (this.#chunks ??= []).push(c);
    if (this.#sweep) this.activeAt = this.#sweep.tick;
  }

  /** @internal The body is complete. */
  onEnd(): void {
    const chunks = this.#chunks;
    const resolve = this.#resolve;
    this.#stopReading();
    const bytes = chunks === undefined ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    this.bytes = bytes;
    resolve?.(bytes);
  }

  /** @internal Reading stopped before the end. */
  onFailure(err: GatewayError): void {
    const reject = this.#reject;
    this.#stopReading();
    this.req.pause();
    this.failed = true;
    reject?.(err);
  }

  #stopReading(): void {
    const req = this.req;
    req.off("data", onBodyData);
    req.off("end", onBodyEnd);
    req.off("error", onBodyError);
    req.off("close", onBodyClose);
    this.#sweep?.readers.delete(this);
    this.#sweep = undefined;
    this.#chunks = undefined;
    this.#resolve = undefined;
    this.#reject = undefined;
  }

  #fail(err: GatewayError): Promise<Uint8Array> {
    this.failed = true;
    return Promise.reject(err);
  }
}

/** The request's `Content-Length`, or -1 when it declares none (chunked, or no body). */
function declaredLength(req: http.IncomingMessage): number {
  const field = req.headers["content-length"];
  return field === undefined ? -1 : Number(field);
}

/**
 * Whether the whole body is in the request's buffer: the request is complete, or as many bytes as
 * its `Content-Length` declares have been handed over (the parser marks the request complete a
 * little after it hands over the last bytes). Node's parser refuses a request declaring both a
 * length and a transfer coding, so a declared length is the body's length.
 */
export function arrived(req: http.IncomingMessage, declared = declaredLength(req)): boolean {
  return req.complete || (declared >= 0 && req.readableLength === declared);
}

// The one settled promise every deferred body read waits a microtask on.
const RESOLVED = Promise.resolve();

const READER = Symbol("tollgate.bodyReader");
type Reading = http.IncomingMessage & { [READER]: NodeRequestBody };

// One executor for every promise: it hands the settle functions over through `settlers`.
const settlers: { resolve: ((bytes: Uint8Array) => void) | undefined; reject: ((err: GatewayError) => void) | undefined } = {
  resolve: undefined,
  reject: undefined,
};
function captureSettlers(resolve: (bytes: Uint8Array) => void, reject: (err: GatewayError) => void): void {
  settlers.resolve = resolve;
  settlers.reject = reject;
}

const incomplete = () => new GatewayError("body_incomplete", 400, "The request body was not received completely.");

function onBodyData(this: Reading, c: Buffer): void {
  this[READER].onData(c);
}
function onBodyEnd(this: Reading): void {
  this[READER].onEnd();
}
function onBodyError(this: Reading): void {
  this[READER].onFailure(incomplete());
}
function onBodyClose(this: Reading): void {
  if (!this.complete) this[READER].onFailure(incomplete());
}
/**
 * The body idle timeout, kept by one interval per timeout value for all bodies being read rather
 * than a timer per body (arming and clearing a timer for every request body cost more than the
 * rest of reading a small one). The interval runs at a quarter of the timeout and counts ticks; a
 * body whose last piece arrived more than {@link SWEEP_STEPS} ticks ago is refused, so a pause is
 * cut after at least the timeout and at most a quarter more. The interval stops when no body is
 * being read.
 */
class IdleSweep {
  tick = 0;
  readonly readers = new Set<NodeRequestBody>();
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly ms: number) {}

  watch(body: NodeRequestBody): void {
    body.activeAt = this.tick;
    this.readers.add(body);
    this.#timer ??= setInterval(sweepIdle, Math.max(1, this.ms / SWEEP_STEPS), this).unref();
  }

  /** @internal One tick: refuses the bodies idle too long; stops when none is being read. */
  sweep(): void {
    this.tick++;
    for (const body of this.readers) {
      if (this.tick - body.activeAt > SWEEP_STEPS) body.onFailure(new GatewayError("body_timeout", 408, "The request body was not received in time."));
    }
    if (this.readers.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}

const SWEEP_STEPS = 4;
const sweeps = new Map<number, IdleSweep>();

function idleSweep(ms: number): IdleSweep {
  let s = sweeps.get(ms);
  if (s === undefined) sweeps.set(ms, (s = new IdleSweep(ms)));
  return s;
}

function sweepIdle(s: IdleSweep): void {
  s.sweep();
}
