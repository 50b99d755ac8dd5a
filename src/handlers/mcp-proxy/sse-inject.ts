/**
 * Gateway messages on a server-to-client SSE stream:
 *
 * - {@link SseInjector} passes an upstream's stream through unchanged and slips whole events of
 *   the gateway's own in between the upstream's events, never inside one: an event is added
 *   only where the bytes so far end with a blank line (or before the first byte), else it waits
 *   for the next event boundary;
 * - {@link holdingStream} is the stream of a session the gateway holds itself (a deferred
 *   session, before its upstream session exists);
 * - {@link completionStreams} wires both to the `notifications/elicitation/complete` hand-over
 *   (`src/mcp/elicitations.ts`).
 *
 * Injected events carry no `id`, so the stream's last event id (the client's `Last-Event-ID` when
 * it resumes) stays the upstream's.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 */
import { PassThrough, pipeline, Transform, type Readable, type TransformCallback } from "node:stream";
import { completionEvent, elicitations } from "../../mcp/elicitations.js";
import { HeaderMap } from "../../pipeline/header-map.js";
import { nodeStreamResponse } from "../../pipeline/node-body.js";
import type { GatewayServices } from "../../pipeline/services.js";

/** True when `tail` (the last bytes of a stream) ends with two line terminators (CRLF, LF or CR): an event boundary. */
export function endsAtEventBoundary(tail: string): boolean {
  let i = tail.length;
  let n = 0;
  while (n < 2 && i > 0) {
    const c = tail.charCodeAt(i - 1);
    if (c === 10) i -= i >= 2 && tail.charCodeAt(i - 2) === 13 ? 2 : 1;
    else if (c === 13) i -= 1;
    else break;
    n++;
  }
  return n === 2;
}

/** An SSE pass-through that can add whole events of its own between the upstream's. */
export class SseInjector extends Transform {
  #tail = "";
  #atBoundary = true;
  #queued: string[] = [];

  constructor() {
    super({ highWaterMark: 0 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.push(chunk);
    if (chunk.length > 0) {
      this.#tail = (this.#tail + chunk.subarray(-4).toString("latin1")).slice(-4);
      // A trailing CR may be the first half of a CRLF still on its way: wait for the next byte.
      this.#atBoundary = !this.#tail.endsWith("\r") && endsAtEventBoundary(this.#tail);
      if (this.#atBoundary && this.#queued.length > 0) this.push(this.#queued.splice(0).join(""));
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    // The upstream ended mid-event: what is queued would be glued to its remains; drop it.
    this.#queued = [];
    cb();
  }

  /** Adds `event` (a complete SSE event, ending with a blank line); false once the stream is over. */
  inject(event: string): boolean {
    if (this.destroyed || this.writableEnded) return false;
    if (this.#atBoundary) this.push(event);
    else this.#queued.push(event);
    return true;
  }
}

/**
 * The stream of a session the gateway holds: a comment line, then the events `deliver` is given.
 * `end()` closes it (the client reconnects, by then to the upstream); it also ends by itself
 * after `lifetimeMs` (0: never).
 */
export function holdingStream(lifetimeMs: number): { body: PassThrough; send(events: string): void; end(): void } {
  const body = new PassThrough();
  body.write(": this session's upstream is not connected yet\n\n");
  const timer = lifetimeMs > 0 ? setTimeout(() => body.end(), lifetimeMs).unref() : undefined;
  body.once("close", () => clearTimeout(timer));
  return {
    body,
    send(events) {
      if (!body.destroyed && !body.writableEnded) body.write(events);
    },
    end() {
      clearTimeout(timer);
      if (!body.destroyed && !body.writableEnded) body.end();
    },
  };
}

/** The proxy's two kinds of server-to-client streams that carry completion notifications. */
export function completionStreams(services: GatewayServices, lifetimeMs: number) {
  const completions = elicitations(services.store);
  return {
    /** The upstream's GET stream of a caller's `session`, with room for the gateway's notifications. */
    withCompletions(body: Readable, session: string): Readable {
      const injector = new SseInjector();
      pipeline(body, injector, () => {});
      const detach = completions.attach(session, (ids) => {
        for (const id of ids) injector.inject(completionEvent(id));
      }, services.log);
      injector.once("close", detach);
      return injector;
    },
    /**
     * The GET stream of a deferred session whose user has not connected yet: it carries the
     * notifications, then ends, and the client's reconnection (now with a credential) reaches
     * the upstream's stream.
     */
    holdSession(session: string, routeId: string): Response {
      const held = holdingStream(lifetimeMs);
      const detach = completions.attach(session, (ids) => {
        held.send(ids.map(completionEvent).join(""));
        held.end();
      }, services.log);
      services.mcpMetrics?.streamOpened(routeId);
      held.body.once("close", () => {
        detach();
        services.mcpMetrics?.streamClosed(routeId);
      });
      const headers = new HeaderMap([
        ["content-type", "text/event-stream"],
        ["cache-control", "no-store"],
        ["content-security-policy", "sandbox; default-src 'none'"],
        ["x-content-type-options", "nosniff"],
      ]);
      return nodeStreamResponse(held.body, { status: 200, headers });
    },
  };
}
