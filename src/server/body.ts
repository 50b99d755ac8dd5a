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

/** The body of one Node request, read on first use. */
export class NodeRequestBody implements LazyBody {
  /** The bytes, once read. */
  bytes: Uint8Array | undefined = undefined;
  /** Set when reading stopped before the end (limit, budget, timeout, client gone). */
  failed = false;
  #promise: Promise<Uint8Array> | undefined;
  #held = 0;
  #released = false;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly limits: BodyLimits,
    private readonly budget: BodyBudget,
  ) {}

  read(): Promise<Uint8Array> {
    return (this.#promise ??= this.#read());
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
    const { req, res, limits } = this;
    const limit = limits.maxBodyBytes;
    const tooLarge = () => new GatewayError("body_too_large", 413, `Request body exceeds ${limit} bytes.`);
    const overloaded = () =>
      new GatewayError("overloaded", 503, "The gateway is buffering too many request bodies; retry shortly.", {
        headers: { "retry-after": "1" },
      });
    const declaredField = req.headers["content-length"];
    const declared = declaredField === undefined ? -1 : Number(declaredField);
    if (declared > limit) return this.#fail(tooLarge());
    if (declared > 0 && !this.#hold(declared)) return this.#fail(overloaded());
    // The client waits for this before sending a body; an answer without reading never sends it.
    if (EXPECT_CONTINUE.test(req.headers.expect ?? "") && !res.headersSent) res.writeContinue();
    return new Promise<Uint8Array>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        req.off("data", onData);
        req.off("end", onEnd);
        req.off("error", onError);
        req.off("close", onClose);
        if (timer) clearTimeout(timer);
      };
      const fail = (err: GatewayError) => {
        cleanup();
        req.pause();
        this.failed = true;
        reject(err);
      };
      const onData = (c: Buffer) => {
        size += c.length;
        if (size > limit) return fail(tooLarge());
        if (declared < 0 && !this.#hold(c.length)) return fail(overloaded());
        chunks.push(c);
        timer?.refresh();
      };
      const onEnd = () => {
        cleanup();
        const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        this.bytes = bytes;
        resolve(bytes);
      };
      const onError = () => fail(new GatewayError("body_incomplete", 400, "The request body was not received completely."));
      const onClose = () => {
        if (!req.complete) onError();
      };
      req.on("data", onData);
      req.on("end", onEnd);
      req.on("error", onError);
      req.on("close", onClose);
      // A body that already arrived whole needs no timer: that is every small MCP message.
      if (!req.complete && limits.bodyIdleTimeoutMs > 0) {
        timer = setTimeout(
          () => fail(new GatewayError("body_timeout", 408, "The request body was not received in time.")),
          limits.bodyIdleTimeoutMs,
        );
      }
    });
  }

  #fail(err: GatewayError): Promise<Uint8Array> {
    this.failed = true;
    return Promise.reject(err);
  }
}
