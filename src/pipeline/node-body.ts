/**
 * Responses whose body is a Node stream (the upstream hop's), exposed to policies as a normal
 * web `Response` but sent by the Node adapter without converting to web streams and back —
 * unless something in the pipeline actually touched the web body.
 */
import type { Readable } from "node:stream";

const NODE_BODY = Symbol.for("tollgate.nodeBody");

interface Tagged {
  [NODE_BODY]?: { stream: Readable; touched: boolean };
}

/**
 * Wraps a Node readable as a Response body. The web stream is created with highWaterMark 0,
 * so nothing is read from the Node stream unless a policy reads `response.body`.
 */
export function nodeStreamResponse(stream: Readable, init: ResponseInit): Response {
  const state = { stream, touched: false };
  let iterator: AsyncIterator<Buffer> | undefined;
  const web = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        state.touched = true;
        iterator ??= stream[Symbol.asyncIterator]();
        const { value, done } = await iterator.next();
        if (done) controller.close();
        else controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
      },
      cancel(reason) {
        state.touched = true;
        stream.destroy(reason instanceof Error ? reason : undefined);
      },
    },
    { highWaterMark: 0 },
  );
  const res = new Response(web, init) as Response & Tagged;
  res[NODE_BODY] = state;
  return res;
}

/** The untouched Node stream behind a response, if the fast path is still available. */
export function untouchedNodeBody(res: Response): Readable | undefined {
  const state = (res as Response & Tagged)[NODE_BODY];
  if (!state || state.touched || res.bodyUsed || res.body?.locked) return undefined;
  return state.stream;
}
