/**
 * Holds many idle SSE streams open through a proxy, to measure what each costs it in memory.
 * Each stream is a real session: an `initialize` POST through the proxy, then a `GET` with
 * `Accept: text/event-stream` and the session id the proxy handed back (the gateway binds
 * session ids to the caller, so made-up ids would be refused); the upstream answers the GET
 * with headers and one comment, then stays silent.
 */
import http from "node:http";
import { rssKiB } from "./proc.js";
import type { Child } from "./targets.js";

/** Opens a session through the proxy and returns the `Mcp-Session-Id` it answered with. */
function initialize(url: string, headers: Record<string, string>, agent: http.Agent): Promise<string | undefined> {
  const body = JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "bench", version: "1" } },
  });
  return new Promise((resolve) => {
    const req = http.request(
      url,
      {
        method: "POST",
        agent,
        headers: { ...headers, "content-type": "application/json", accept: "application/json, text/event-stream" },
      },
      (res) => {
        res.resume();
        const sid = res.headers["mcp-session-id"];
        res.on("end", () => resolve(res.statusCode === 200 && typeof sid === "string" ? sid : undefined));
      },
    );
    req.on("error", () => resolve(undefined));
    req.end(body);
  });
}

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
  const one = async (): Promise<void> => {
    const sessionId = await initialize(url, headers, agent);
    if (!sessionId) {
      failed++;
      return;
    }
    return new Promise<void>((resolveOnce) => {
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
          headers: { ...headers, accept: "text/event-stream", "mcp-session-id": sessionId },
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
  };
  for (let i = 0; i < count; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, () => one()));
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * RSS growth per idle stream: a first batch of 100 streams warms every code path and allocation
 * pool, then the growth from holding `count` more is divided by their number. In Node processes
 * (`node`, started with `--inspect=127.0.0.1:0`) a full garbage collection through the inspector
 * runs before each reading, so the figure is what the streams keep alive — not the garbage their
 * `initialize` requests left, which would otherwise land in one reading or the other depending
 * on when V8 last collected (it moved single runs by ±15 KiB per stream).
 */
export async function measureSse(url: string, headers: Record<string, string>, pids: number[], node: Child | undefined, count: number) {
  const settle = async () => {
    await sleep(500);
    if (node && !(await node.collectGarbage())) throw new Error(`${node.name}: garbage collection through the inspector failed`);
    await sleep(500);
  };
  const warm = await openIdleStreams(url, headers, 100);
  await settle();
  const before = rssKiB(pids);
  const held = await openIdleStreams(url, headers, count);
  await settle();
  const after = rssKiB(pids);
  warm.close();
  held.close();
  return { kib: held.open ? (after - before) / held.open : NaN, open: held.open, failed: held.failed + warm.failed };
}
