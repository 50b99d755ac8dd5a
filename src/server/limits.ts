/**
 * Limits of the HTTP edge: how long a client may take to send a request, how much request body
 * the process buffers at once, how many header fields and connections it accepts, and which
 * peers may tell it the client's address. Defaults follow Envoy's edge-proxy recommendations and
 * nginx's documented defaults; `docs/security.md` lists each with its reference.
 *
 * @see https://www.envoyproxy.io/docs/envoy/latest/configuration/best_practices/edge
 * @see https://nginx.org/en/docs/http/ngx_http_core_module.html
 */
import fs from "node:fs";

export interface EdgeLimits {
  /** Time to receive the request line and header fields (408 beyond). */
  headersTimeoutMs: number;
  /** Time to receive the whole request, header fields and body (408 beyond); 0 = none. */
  requestTimeoutMs: number;
  /** Longest pause between two pieces of a request body being read (408 beyond); 0 = none. */
  bodyIdleTimeoutMs: number;
  /** Request bytes the whole process buffers at once (503 with Retry-After beyond). */
  maxBufferedBodyBytes: number;
  /** Header fields per request (431 beyond). */
  maxHeaderCount: number;
  /** Bytes of the request line and header fields together (431 beyond). */
  maxHeaderBytes: number;
  /** Open client connections; further ones are closed at once. 0 = no cap. */
  maxConnections: number;
  /** Idle time of a keep-alive connection between requests. */
  keepAliveTimeoutMs: number;
  /** After an answer sent before the request body was read: how long unread bytes are discarded. */
  lingerMs: number;
  /** ... and the longest pause in them before the connection is closed. */
  lingerIdleMs: number;
  /** Peers (CIDR list) whose `X-Forwarded-For` / `Forwarded` names the client. */
  trustedProxies: string[];
  /** Which field a trusted proxy uses to name the client. */
  forwardedHeader: "x-forwarded-for" | "forwarded";
}

/** The open-files limit of this process (Linux), or undefined where it cannot be read. */
function openFilesLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Half the open-files limit: every proxied request may hold a second descriptor (its upstream
 * socket), and the store and logs need some. At the cap new clients are turned away while the
 * connections already open keep working, instead of every descriptor running out at once.
 */
export function defaultMaxConnections(): number {
  const nofile = openFilesLimit();
  return nofile ? Math.max(64, Math.floor(nofile / 2)) : 0;
}

export const DEFAULT_EDGE_LIMITS: Readonly<EdgeLimits> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  bodyIdleTimeoutMs: 10_000,
  maxBufferedBodyBytes: 64 * 1024 * 1024,
  maxHeaderCount: 100,
  maxHeaderBytes: 16 * 1024,
  maxConnections: 0, // no cap unless set; `tollgate start` sets defaultMaxConnections()
  keepAliveTimeoutMs: 65_000,
  lingerMs: 30_000,
  lingerIdleMs: 5_000,
  trustedProxies: [],
  forwardedHeader: "x-forwarded-for",
};
