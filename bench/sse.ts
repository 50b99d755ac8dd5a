/**
 * Holds many idle SSE streams open through a proxy, to measure what each costs it in memory.
 * Streams are `GET` requests with `Accept: text/event-stream` (the Streamable HTTP server→client
 * stream); the upstream answers each with headers and one comment, then stays silent.
 */
import http from "node:http";

export interface HeldStreams {
  /** Streams whose first SSE bytes arrived through the proxy. */
  open: number;
  failed: number;
  close(): void;
}

/**
 * Opens `count` streams, at most `batch` connecting at a time, and resolves once all are open.
 * A stream that has not delivered its first bytes within `timeoutMs` counts as failed.
 */
export async function openIdleStreams(
  url: string,
  headers: Record<string, string>,
  count: number,
  batch = 100,
  timeoutMs = 10_000,
): Promise<HeldStreams> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const requests: http.ClientRequest[] = [];
  let open = 0;
  let failed = 0;
  const one = (i: number) =>
    new Promise<void>((resolveOnce) => {
      let settled = false;
      const timer = setTimeout(() => {
        failed++;
        req.destroy();
        resolve();
      }, timeoutMs);
      const resolve = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolveOnce();
      };
      const req = http.get(
        url,
        {
          agent,
          headers: { ...headers, accept: "text/event-stream", "mcp-session-id": `bench-session-${i}` },
        },
        (res) => {
          if (settled) return;
          if (res.statusCode !== 200) {
            failed++;
            res.resume();
            resolve();
            return;
          }
          res.once("data", () => {
            if (settled) return;
            open++;
            resolve();
          });
          res.on("error", () => {});
        },
      );
      req.on("error", () => {
        if (settled) return;
        failed++;
        resolve();
      });
      requests.push(req);
    });
  for (let i = 0; i < count; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, (_, j) => one(i + j)));
  }
  return {
    open,
    failed,
    close() {
      for (const r of requests) r.destroy();
      agent.destroy();
    },
  };
}
