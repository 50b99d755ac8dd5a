/**
 * Gateway messages on a server-to-client SSE stream:
 *
 * - {@link SseRelay} passes an upstream's stream through unchanged (ending it when the upstream
 *   goes silent for too long) and slips whole events of the gateway's own in between the
 *   upstream's events, never inside one: an event is added only where the bytes so far end with
 *   a blank line (or before the first byte), else it waits for the next event boundary. It is
 *   one object per stream, with no pipe, no `stream.pipeline` and no copy of the bytes, because
 *   every idle stream held open through the gateway costs what it holds;
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
import { PassThrough, Readable } from "node:stream";
import { completionEvent, elicitations } from "../../mcp/elicitations.js";
import { HeaderMap } from "../../pipeline/header-map.js";
import { nodeStreamResponse } from "../../pipeline/node-body.js";
import type { GatewayServices } from "../../pipeline/services.js";

const LF = 10;
const CR = 13;
/** Bit of a boundary state: the bytes so far end with a CR (perhaps the first half of a CRLF). */
const ENDS_CR = 4;
/** The boundary state of a stream before its first byte: at a boundary. */
export const AT_START = 2;

/**
 * The boundary state after `chunk`, given the state before it: the number of line terminators
 * (CRLF, LF or CR; at most 2) the bytes so far end with, plus {@link ENDS_CR} when the last byte
 * is a CR. Only the end of the chunk is read (backwards, until two terminators or another byte),
 * so a chunk costs the same whatever its size. A CRLF split across chunks counts once.
 */
export function nextBoundaryState(state: number, chunk: Uint8Array): number {
  const len = chunk.length;
  if (len === 0) return state;
  let i = len;
  let n = 0;
  while (i > 0 && n < 2) {
    const c = chunk[i - 1];
    if (c === LF) {
      if (i >= 2 && chunk[i - 2] === CR) i -= 2;
      else if (i === 1 && state & ENDS_CR) {
        i = 0; // the second half of a CRLF whose CR the state before already counted
        break;
      } else i -= 1;
    } else if (c === CR) i -= 1;
    else break;
    n++;
  }
  if (i === 0 && n < 2) n = Math.min(2, n + (state & 3));
  return n | (chunk[len - 1] === CR ? ENDS_CR : 0);
}

/**
 * True when a stream in boundary `state` ends with a blank line, so an event may follow. A
 * trailing CR waits for the next byte: it may be the first half of a CRLF still on its way.
 */
export const atEventBoundary = (state: number): boolean => state === 2;

/** Where an upstream's SSE body ends up: the {@link SseRelay} that forwards it. */
const RELAY = Symbol("tollgate.sseRelay");
type Source = Readable & { [RELAY]?: SseRelay };

// One set of listener functions for every relay: `this` is the upstream body.
function onSourceData(this: Source, chunk: Buffer): void {
  this[RELAY]?.relay(chunk);
}
function onSourceEnd(this: Source): void {
  this[RELAY]?.finish();
}
function onSourceError(this: Source, err: Error & { code?: string }): void {
  // The upstream went silent for longer than the route's idle timeout: end the client's stream
  // (it may resume with Last-Event-ID) instead of breaking it. Any other failure breaks it.
  if (err?.code === "UND_ERR_BODY_TIMEOUT") this[RELAY]?.finish();
  else this[RELAY]?.destroy(err);
}
function onSourceClose(this: Source): void {
  const relay = this[RELAY];
  if (relay && !this.readableEnded) relay.destroy();
}

/**
 * The client's side of an upstream SSE body, in one object and without a pipe: it forwards the
 * upstream's chunks as they are (with the upstream's pace: a slow client pauses the upstream
 * body), ends the stream when the upstream goes silent for too long (`UND_ERR_BODY_TIMEOUT`)
 * instead of breaking it, and can add whole events of the gateway's own between the upstream's,
 * never inside one: an event is added only where the bytes so far end with a blank line (or
 * before the first byte), else it waits for the next event boundary.
 *
 * Holding a stream costs this object and a small number in it; destroying it (the client went
 * away) destroys the upstream body, and a failing upstream body destroys it with the error.
 */
export class SseRelay extends Readable {
  readonly #source: Source;
  #state = AT_START;
  #ended = false;
  #queued: string | undefined;
  /** Called once when the stream is over (ended or destroyed). */
  onClose: (() => void) | undefined;

  constructor(source: Readable) {
    super({ highWaterMark: 0 });
    this.#source = source as Source;
    this.#source[RELAY] = this;
    // Nothing flows before the client reads (`_read`).
    if (source.readableFlowing !== true) source.pause();
    source.on("data", onSourceData);
    source.once("end", onSourceEnd);
    source.on("error", onSourceError);
    source.once("close", onSourceClose);
  }

  /** @internal An upstream chunk. */
  relay(chunk: Buffer): void {
    if (this.#ended) return;
    const more = this.push(chunk);
    this.#state = nextBoundaryState(this.#state, chunk);
    if (this.#queued !== undefined && atEventBoundary(this.#state)) {
      this.push(this.#queued);
      this.#queued = undefined;
    }
    if (!more) this.#source.pause();
  }

  /** @internal The upstream's body is over: end the client's stream. */
  finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#source[RELAY] = undefined; // its `close` that follows is no news
    // The upstream ended mid-event: what is queued would be glued to its remains; drop it.
    this.#queued = undefined;
    this.push(null);
  }

  override _read(): void {
    this.#source.resume();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#ended = true;
    this.#queued = undefined;
    const source = this.#source;
    source[RELAY] = undefined;
    if (!source.destroyed) source.destroy();
    const onClose = this.onClose;
    this.onClose = undefined;
    onClose?.();
    cb(err);
  }

  /** Adds `event` (a complete SSE event, ending with a blank line); false once the stream is over. */
  inject(event: string): boolean {
    if (this.#ended || this.destroyed) return false;
    if (atEventBoundary(this.#state)) this.push(event);
    else this.#queued = this.#queued === undefined ? event : this.#queued + event;
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
    /**
     * The client's side of an upstream SSE body (see {@link SseRelay}); for the GET stream of a
     * caller's `session`, it also carries the gateway's completion notifications.
     */
    relay(body: Readable, session?: string): Readable {
      const relay = new SseRelay(body);
      if (session !== undefined) {
        relay.onClose = completions.attach(session, (ids) => {
          for (const id of ids) relay.inject(completionEvent(id));
        }, services.log);
      }
      return relay;
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
