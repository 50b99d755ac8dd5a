/**
 * Reads the JSON-RPC messages of a response body as it passes through, without holding the
 * stream back: a second `data` listener beside the pipe that forwards the body. SSE bodies are
 * split into events as they arrive (each answer is seen when it arrives, not when the stream
 * ends); JSON bodies are collected up to a bound and parsed once at their end.
 *
 * Only answers are parsed (an SSE event whose data holds no `"result"`/`"error"` — progress and
 * other notifications — is skipped without parsing), and a JSON body only when the callback
 * cannot tell its outcome from the bytes (`wholeBody`). What is read is handed to a callback and
 * dropped; nothing is logged from here.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#sending-messages-to-the-server
 */
import { Buffer } from "node:buffer";
import { StringDecoder } from "node:string_decoder";
import type { Readable } from "node:stream";
import type { JsonRpcMessage } from "../mcp/messages.js";
import type { HeldWatcher } from "../pipeline/node-body.js";

/** Largest JSON body (or single SSE event) looked at; larger ones pass through unread. */
export const MAX_OBSERVED_BYTES = 4 * 1024 * 1024;

export interface TapCallbacks {
  /** One JSON-RPC message of the body (answers, requests and notifications alike). */
  message(m: JsonRpcMessage): void;
  /** The body is over: `complete` when it ended normally, false when it was cut off. */
  end(complete: boolean, unread: boolean): void;
  /**
   * A whole JSON body, before it is parsed. Returning true means its outcome was read from the
   * bytes: it is not parsed, and `message` is not called for it.
   */
  wholeBody?(body: Buffer): boolean;
  /**
   * A whole body handed over at once ({@link RpcTap.whole}), before anything reads it. Returning
   * true means the callback keeps it and hands it back to `whole` later (the audit trail does so
   * while its request's observation waits in its queue, `observation.ts`).
   */
  hold?(body: Buffer): boolean;
}

/** Incremental parser for one body. */
export class RpcTap implements HeldWatcher {
  #chunks: Buffer[] | undefined;
  #size = 0;
  #decoder: StringDecoder | undefined;
  #pending = "";
  #data = "";
  #unread = false;
  #done = false;

  constructor(
    readonly sse: boolean,
    private readonly cb: TapCallbacks,
  ) {
    if (sse) this.#decoder = new StringDecoder("utf8");
    else this.#chunks = [];
  }

  chunk(c: Buffer): void {
    if (this.#done) return;
    if (!this.sse) {
      this.#size += c.length;
      if (this.#size > MAX_OBSERVED_BYTES) {
        this.#unread = true;
        this.#chunks = undefined;
      } else this.#chunks?.push(c);
      return;
    }
    let text = this.#pending + this.#decoder!.write(c);
    let nl: number;
    while ((nl = text.indexOf("\n")) >= 0) {
      const end = nl > 0 && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      this.#line(text.slice(0, end));
      text = text.slice(nl + 1);
    }
    if (text.length > MAX_OBSERVED_BYTES) {
      this.#unread = true;
      text = "";
    }
    this.#pending = text;
  }

  #line(line: string): void {
    if (line === "") {
      const data = this.#data;
      this.#data = "";
      if (data.length > MAX_OBSERVED_BYTES) this.#unread = true;
      else if (data.includes('"result"') || data.includes('"error"')) this.#parse(data);
      return;
    }
    if (line.startsWith("data:")) {
      const v = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
      this.#data = this.#data ? `${this.#data}\n${v}` : v;
    }
  }

  #parse(text: string): void {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.#unread = true;
      return;
    }
    if (Array.isArray(json)) {
      for (const m of json) if (typeof m === "object" && m !== null) this.cb.message(m as JsonRpcMessage);
    } else if (typeof json === "object" && json !== null) this.cb.message(json as JsonRpcMessage);
  }

  /** {@link HeldWatcher}: the body is read as a stream; listen to it. */
  attach(stream: Readable): void {
    tapNodeBody(stream, this);
  }

  /** {@link HeldWatcher}: the whole body at once (it is complete), or undefined: dropped unread. */
  whole(bytes: Buffer | undefined): void {
    if (bytes === undefined) return this.finish(false);
    if (this.cb.hold?.(bytes) === true) return;
    this.chunk(bytes);
    this.finish(true);
  }

  /** Ends the body; `complete` is false when it was cut off. Idempotent. */
  finish(complete: boolean): void {
    if (this.#done) return;
    if (complete && !this.sse && this.#chunks) {
      const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
      if (all.length > 0 && this.cb.wholeBody?.(all) !== true) this.#parse(all.toString("utf8"));
    } else if (complete && this.sse) {
      this.#line(this.#pending);
      this.#line("");
    }
    this.#done = true;
    this.#chunks = undefined;
    this.cb.end(complete, this.#unread);
  }
}

const TAP = Symbol("tollgate.rpcTap");
type Tapped = Readable & { [TAP]: RpcTap };

// Listeners shared by every tapped body (an emitter calls them with the body as `this`), so
// tapping a body allocates no closures.
function onTapData(this: Tapped, c: Buffer): void {
  this[TAP].chunk(c);
}
function onTapEnd(this: Tapped): void {
  this[TAP].finish(true);
}
function onTapClose(this: Tapped): void {
  this[TAP].finish(false);
}

/**
 * Watches a Node body that someone else will pipe. The stream is paused first so the listener
 * does not start the flow before the pipe is attached (the pipe resumes it).
 */
export function tapNodeBody(body: Readable, tap: RpcTap): void {
  if (body.readableFlowing !== true) body.pause();
  (body as Tapped)[TAP] = tap;
  body.on("data", onTapData);
  // `finish` is idempotent: plain listeners, not `once` (which wraps each in a closure).
  body.on("end", onTapEnd);
  body.on("close", onTapClose);
}
