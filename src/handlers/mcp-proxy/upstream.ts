/**
 * One upstream exchange on undici's dispatcher API (not WHATWG fetch: a fraction of the cost per
 * request, and bodies stay Node streams), with timeouts and redirect handling, and the mapping of
 * transport failures to `GatewayError`s (502/504 problem+json).
 */
import { performance } from "node:perf_hooks";
import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { GatewayError } from "../../errors.js";
import type { UpstreamSignal } from "../../pipeline/types.js";
import { headerValue, withoutCredentials } from "./headers.js";

export type UpstreamResponse = Dispatcher.ResponseData;

export interface ExchangeOptions {
  dispatcher: Dispatcher;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array | undefined;
  /** The client going away (a web AbortSignal, or the adapter's cheaper ClientDisconnect). */
  signal: UpstreamSignal;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
  /** Told how long each exchange took, to its response head or failure (the audit trail's upstream time). */
  timer: { upstreamTime(ms: number): void } | undefined;
}

export interface RedirectPolicy {
  follow: boolean;
  /** Other origins a redirect may lead to (without credentials). */
  allowedOrigins: ReadonlySet<string>;
  /** Headers set by credential policies (removed before leaving the origin). */
  credentials: Record<string, string>;
}

const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Maps an undici failure to the client-facing error. Never includes the upstream URL. */
export function upstreamFailure(err: unknown, signal: { readonly aborted: boolean }): GatewayError {
  if (signal.aborted) {
    return new GatewayError("client_closed_request", 499, "The client closed the request.", { cause: err });
  }
  const code = (err as { code?: string } | undefined)?.code;
  switch (code) {
    case "UND_ERR_CONNECT_TIMEOUT":
      return new GatewayError("upstream_timeout", 504, "The upstream MCP server did not accept a connection in time.", {
        cause: err,
      });
    case "UND_ERR_HEADERS_TIMEOUT":
      return new GatewayError("upstream_timeout", 504, "The upstream MCP server did not answer in time.", { cause: err });
    case "ECONNREFUSED":
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
    case "ERR_TLS_CERT_ALTNAME_INVALID":
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "CERT_HAS_EXPIRED":
      return new GatewayError("upstream_unreachable", 502, "The upstream MCP server could not be reached.", { cause: err });
    default:
      return new GatewayError("upstream_error", 502, "The connection to the upstream MCP server failed.", { cause: err });
  }
}

/** Origin and path of upstream URLs seen before (configured URLs, and redirect targets). */
const targets = new Map<string, { origin: string; path: string }>();
const MAX_TARGETS = 256;

/** Origin and path of an http(s) URL, parsed once per distinct URL; `undefined` for anything else. */
function targetOf(url: string): { origin: string; path: string } | undefined {
  let t = targets.get(url);
  if (t) return t;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return undefined;
  t = { origin: u.origin, path: u.search ? `${u.pathname}${u.search}` : u.pathname };
  if (targets.size >= MAX_TARGETS) targets.clear();
  targets.set(url, t);
  return t;
}

/**
 * Sends one request; rejects with a `GatewayError` on transport failure. Not an async function,
 * and on the dispatcher's callback API: one promise per exchange, settled straight from undici's
 * callback (its promise API would add one of its own, and mapping its failure a second).
 */
export function sendOnce(o: ExchangeOptions): Promise<UpstreamResponse> {
  const started = o.timer ? performance.now() : 0;
  return new Promise((resolve, reject) => {
    try {
      // Straight to the dispatcher with a pre-parsed origin and path: `undici.request(url)` would
      // parse the URL and copy the options on every call.
      const t = targetOf(o.url);
      if (!t) throw new TypeError("The upstream URL is not an http(s) URL.");
      o.dispatcher.request(
        {
          origin: t.origin,
          path: t.path,
          method: o.method as Dispatcher.HttpMethod,
          headers: o.headers,
          body: o.body,
          signal: o.signal,
          headersTimeout: o.firstByteTimeoutMs,
          bodyTimeout: o.idleTimeoutMs,
        },
        // Passed as an argument, not bound to a name first: the TypeScript loader gives every
        // function bound to a name its name with `Object.defineProperty` each time it is
        // created, which on this path cost more than the callback itself (Node 24: ~1.5 µs).
        (err: Error | null, data: UpstreamResponse) => settleSend(o, started, resolve, reject, err, data),
      );
    } catch (err) {
      settleSend(o, started, resolve, reject, err as Error, undefined);
    }
  });
}

/** The end of one {@link sendOnce}: its time to the observation, then the promise settled. */
function settleSend(
  o: ExchangeOptions,
  started: number,
  resolve: (res: UpstreamResponse) => void,
  reject: (err: unknown) => void,
  err: Error | null,
  data: UpstreamResponse | undefined,
): void {
  o.timer?.upstreamTime(performance.now() - started);
  if (err) reject(upstreamFailure(err, o.signal));
  else resolve(data!);
}

/** Discards a body we will not forward, releasing its connection. */
export function discard(res: UpstreamResponse): void {
  res.body.dump({ limit: 64 * 1024 }).catch(() => {});
}

/**
 * Resolves `true` once a body ends without any data, `false` as soon as data arrives (that data
 * stays in the stream, so the body can still be forwarded whole). Rejects when the body fails.
 */
export function endsEmpty(body: Readable, signal: { readonly aborted: boolean }): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const settle = (empty: boolean) => {
      body.off("readable", onReadable).off("end", onEnd).off("error", onError);
      resolve(empty);
    };
    const onEnd = () => settle(true);
    const onError = (err: unknown) => {
      body.off("readable", onReadable).off("end", onEnd);
      reject(upstreamFailure(err, signal));
    };
    const onReadable = () => {
      const chunk: unknown = body.read();
      if (chunk === null) return; // end of data: "end" follows
      body.unshift(chunk);
      settle(false);
    };
    body.on("readable", onReadable).once("end", onEnd).once("error", onError);
  });
}

/**
 * Sends the request and, when enabled, follows redirects: at most five, to the same origin
 * (with credentials) or to an `allowedOrigins` origin (without them). 303 turns the request into
 * a bodiless GET; other codes keep method and body (an MCP POST must stay a POST). A redirect
 * that may not be followed is answered as is.
 */
export function exchange(o: ExchangeOptions, redirects: RedirectPolicy): Promise<UpstreamResponse> {
  // Without redirects to follow, the send's own promise (no async frame around it).
  return redirects.follow ? following(o, redirects) : sendOnce(o);
}

async function following(o: ExchangeOptions, redirects: RedirectPolicy): Promise<UpstreamResponse> {
  let res = await sendOnce(o);
  if (!REDIRECTS.has(res.statusCode)) return res;
  const home = new URL(o.url).origin;
  let current = o;
  for (let hop = 0; REDIRECTS.has(res.statusCode); hop++) {
    const location = headerValue(res.headers, "location");
    if (!location) return res;
    let next: URL;
    try {
      next = new URL(location, current.url);
    } catch {
      return res;
    }
    if (next.protocol !== "http:" && next.protocol !== "https:") return res;
    const toHome = next.origin === home;
    if (!toHome && !redirects.allowedOrigins.has(next.origin)) return res;
    discard(res);
    if (hop >= MAX_REDIRECTS) {
      throw new GatewayError("upstream_redirect_loop", 502, "The upstream MCP server redirected too many times.");
    }
    const toGet = res.statusCode === 303 && current.method !== "HEAD";
    let headers = toHome ? o.headers : withoutCredentials(o.headers, redirects.credentials);
    if (toGet) {
      headers = { ...headers };
      delete headers["content-type"];
    }
    current = {
      ...current,
      url: next.href,
      method: toGet ? "GET" : current.method,
      body: toGet ? undefined : current.body,
      headers,
    };
    res = await sendOnce(current);
  }
  return res;
}
