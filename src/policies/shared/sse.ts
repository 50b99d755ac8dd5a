/**
 * Rewriting selected events of a Server-Sent Events stream while it streams.
 *
 * Bytes are split into events at blank lines without decoding the rest of the stream; an
 * event is decoded only while the caller still wants to look at events (`active()`), and once
 * it does not, the remaining bytes pass through untouched, chunk by chunk.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 */

const LF = 0x0a;
const CR = 0x0d;

export interface SseRewriteOptions {
  /**
   * Called with the `data` of each event (multi-line data joined by `\n`) while `active()` is
   * true. Return replacement data (a single line) or undefined to keep the event as it was.
   */
  onData(data: string): string | undefined;
  /** While true, events are inspected; once false, the rest of the stream is copied as is. */
  active(): boolean;
  /** Events to emit before anything from the upstream stream (already formatted). */
  prelude?: string;
  /** Largest single event buffered, in bytes (default 32 MiB); beyond it the stream errors. */
  maxEventBytes?: number;
}

/** Formats one SSE event carrying `data` (which must not contain line breaks). */
export function sseEvent(data: string): string {
  return `data: ${data}\n\n`;
}

/** Returns a stream equal to `body` except for rewritten events. */
export function rewriteSse(body: ReadableStream<Uint8Array>, opts: SseRewriteOptions): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const max = opts.maxEventBytes ?? 32 * 1024 * 1024;
  let pending = new Uint8Array(0);
  let scanPos = 0;
  let atLineStart = true;
  let passThrough = false;

  /** Index just past the blank line ending the first complete event in `pending`, or -1. */
  const eventEnd = (final: boolean): number => {
    let i = scanPos;
    while (i < pending.length) {
      const c = pending[i]!;
      if (c === LF || c === CR) {
        let len = 1;
        if (c === CR) {
          if (i + 1 >= pending.length && !final) break; // CR LF may be split across chunks
          if (pending[i + 1] === LF) len = 2;
        }
        if (atLineStart) {
          scanPos = 0;
          atLineStart = true;
          return i + len;
        }
        atLineStart = true;
        i += len;
        continue;
      }
      atLineStart = false;
      i++;
    }
    scanPos = i;
    return -1;
  };

  const processEvent = (bytes: Uint8Array): Uint8Array => {
    const text = decoder.decode(bytes);
    const lines = text.split(/\r\n|\r|\n/);
    const data: string[] = [];
    for (const line of lines) {
      if (line === "data" || line.startsWith("data:")) {
        const v = line.slice(5);
        data.push(v.startsWith(" ") ? v.slice(1) : v);
      }
    }
    if (data.length === 0) return bytes;
    const replacement = opts.onData(data.join("\n"));
    if (replacement === undefined) return bytes;
    const out: string[] = [];
    let placed = false;
    for (const line of lines) {
      if (line === "") continue;
      if (line === "data" || line.startsWith("data:")) {
        if (!placed) out.push(`data: ${replacement}`);
        placed = true;
      } else out.push(line);
    }
    return encoder.encode(`${out.join("\n")}\n\n`);
  };

  const drain = (controller: TransformStreamDefaultController<Uint8Array>, final: boolean) => {
    while (!passThrough && pending.length > 0) {
      const end = eventEnd(final);
      if (end < 0) break;
      const event = pending.subarray(0, end);
      pending = pending.subarray(end);
      controller.enqueue(processEvent(event));
      if (!opts.active()) passThrough = true;
    }
    if (passThrough && pending.length > 0) {
      controller.enqueue(pending);
      pending = new Uint8Array(0);
    }
  };

  const transform = new TransformStream<Uint8Array, Uint8Array>({
    start(controller) {
      if (opts.prelude) controller.enqueue(encoder.encode(opts.prelude));
      if (!opts.active()) passThrough = true;
    },
    transform(chunk, controller) {
      if (passThrough) {
        controller.enqueue(chunk);
        return;
      }
      const merged = new Uint8Array(pending.length + chunk.length);
      merged.set(pending, 0);
      merged.set(chunk, pending.length);
      pending = merged;
      drain(controller, false);
      if (pending.length > max) throw new Error("SSE event exceeds the size limit");
    },
    flush(controller) {
      drain(controller, true);
      // An unterminated final event is not dispatched by clients; pass its bytes on unchanged.
      if (pending.length > 0) controller.enqueue(pending);
    },
  });
  return body.pipeThrough(transform);
}
