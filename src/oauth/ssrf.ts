/**
 * Server-side request forgery guard for every URL an upstream hands the gateway (protected
 * resource metadata, authorization server metadata, token/registration/revocation endpoints,
 * `resource_metadata` from a challenge).
 *
 * Rules, checked after DNS resolution, at connect time (so a DNS answer cannot change between
 * check and use) and again on every redirect:
 * - only `https:`, or plain `http:` to a loopback address;
 * - loopback, private (RFC 1918, ULA, CGNAT) and link-local targets are refused unless the
 *   route's own upstream (`rewritePattern`) is on such an address — an administrator chose a
 *   local upstream — or the host is listed in `allowedUpstreamHosts`;
 * - unspecified, multicast, broadcast and reserved ranges are always refused;
 * - bounded response size, time and redirect count.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/security_best_practices#server-side-request-forgery-ssrf
 */
import dns from "node:dns";
import net from "node:net";
import { Agent, request as undiciRequest, type Dispatcher } from "undici";
import { GatewayError } from "../errors.js";

/** Address classes the guard distinguishes. */
export type AddressClass = "public" | "loopback" | "private" | "linklocal" | "forbidden";

/** What a guard allows. */
export interface SsrfPolicy {
  /** Allow loopback/private/link-local targets (the route's upstream is itself on one). */
  allowPrivate: boolean;
  /** Host names (lower case) allowed whatever their addresses are (`allowedUpstreamHosts`). */
  allowedHosts: readonly string[];
  /** Per-request time limit in ms (default 10 s). */
  timeoutMs?: number;
  /** Largest response body in bytes (default 1 MiB). */
  maxBytes?: number;
  /** Redirects followed when the caller asks for `redirect: "follow"` (default 3). */
  maxRedirects?: number;
}

/** The fetch shape oauth4webapi's `customFetch` and the discovery code use. */
export type GuardedFetch = (url: string | URL, init?: GuardedInit) => Promise<Response>;

export interface GuardedInit {
  method?: string;
  headers?: HeadersInit;
  body?: string | URLSearchParams | Uint8Array | null;
  redirect?: "follow" | "manual" | "error";
  signal?: AbortSignal | null;
}

/** Thrown (as a GatewayError, status 502) when a URL is refused. */
export class SsrfBlockedError extends GatewayError {
  constructor(reason: string) {
    super("upstream_url_blocked", 502, "The upstream named an address the gateway refuses to contact.", {
      details: { reason },
    });
  }
}

function ipv4Class(ip: string): AddressClass {
  const p = ip.split(".").map(Number) as [number, number, number, number];
  const [a, b] = p;
  if (a === 127) return "loopback";
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return "private";
  if (a === 100 && b >= 64 && b <= 127) return "private"; // CGNAT (RFC 6598)
  if (a === 169 && b === 254) return "linklocal";
  if (a === 0 || a >= 224) return "forbidden"; // unspecified, multicast, reserved, broadcast
  if (a === 192 && b === 0 && p[2] === 0) return "forbidden"; // IETF protocol assignments
  if (a === 198 && (b === 18 || b === 19)) return "forbidden"; // benchmarking
  return "public";
}

/** Classifies an IP address literal (v4 or v6). Non-IP input is `forbidden`. */
export function classifyAddress(ip: string): AddressClass {
  const kind = net.isIP(ip);
  if (kind === 4) return ipv4Class(ip);
  if (kind !== 6) return "forbidden";
  const lower = ip.toLowerCase();
  const mapped = /^(?:0{0,4}:){0,5}(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower) ?? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return ipv4Class(mapped[1]!);
  const words = expandIpv6(lower);
  if (!words) return "forbidden";
  if (words.every((w) => w === 0)) return "forbidden"; // ::
  if (words.slice(0, 7).every((w) => w === 0) && words[7] === 1) return "loopback"; // ::1
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return ipv4Class(`${words[6]! >> 8}.${words[6]! & 255}.${words[7]! >> 8}.${words[7]! & 255}`);
  }
  const first = words[0]!;
  if ((first & 0xfe00) === 0xfc00) return "private"; // fc00::/7 unique local
  if ((first & 0xffc0) === 0xfe80) return "linklocal"; // fe80::/10
  if ((first & 0xff00) === 0xff00) return "forbidden"; // multicast
  if (first === 0x64 && words[1] === 0xff9b) return "forbidden"; // NAT64: could reach anything
  if (first === 0x2002) return "forbidden"; // 6to4 embeds an IPv4 address
  return "public";
}

function expandIpv6(ip: string): number[] | undefined {
  const zone = ip.indexOf("%");
  const s = zone >= 0 ? ip.slice(0, zone) : ip;
  let parts: string[];
  if (s.includes("::")) {
    const [head, tail] = s.split("::") as [string, string];
    const h = head ? head.split(":") : [];
    const t = tail ? tail.split(":") : [];
    if (t.length && t[t.length - 1]!.includes(".")) return undefined;
    parts = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  } else parts = s.split(":");
  if (parts.length !== 8) return undefined;
  return parts.map((x) => parseInt(x || "0", 16));
}

function isAllowedClass(cls: AddressClass, policy: SsrfPolicy, host: string, httpOnly: boolean): string | undefined {
  if (cls === "forbidden") return "reserved address";
  if (httpOnly && cls !== "loopback") return "plain http is only allowed to loopback";
  if (cls === "public") return undefined;
  if (policy.allowPrivate || policy.allowedHosts.includes(host)) return undefined;
  return `${cls} address`;
}

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
}

/** Resolves `host` (or takes the literal) and returns every address. */
export async function resolveHost(host: string): Promise<string[]> {
  if (net.isIP(host)) return [host];
  const found = await dns.promises.lookup(host, { all: true, verbatim: true });
  return found.map((a) => a.address);
}

/**
 * True when `url`'s host is loopback/private/link-local (used to decide `allowPrivate` from the
 * route's `rewritePattern`). Resolution failures count as public (nothing is loosened).
 */
export async function isNonPublicTarget(url: string | URL): Promise<boolean> {
  try {
    const host = hostOf(new URL(url));
    const addrs = await resolveHost(host);
    return addrs.some((a) => {
      const c = classifyAddress(a);
      return c === "loopback" || c === "private" || c === "linklocal";
    });
  } catch {
    return false;
  }
}

/**
 * Checks a URL before it is contacted: scheme, literal addresses and (for http) that every
 * resolved address is loopback. Throws {@link SsrfBlockedError}.
 */
export async function assertUrlAllowed(url: URL, policy: SsrfPolicy): Promise<void> {
  if (url.username || url.password) throw new SsrfBlockedError("credentials in URL");
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new SsrfBlockedError(`scheme ${url.protocol}`);
  const host = hostOf(url);
  let addrs: string[];
  try {
    addrs = await resolveHost(host);
  } catch (cause) {
    throw new GatewayError("upstream_unreachable", 502, "The upstream's host name could not be resolved.", { cause });
  }
  if (addrs.length === 0) throw new SsrfBlockedError("no addresses");
  for (const a of addrs) {
    const why = isAllowedClass(classifyAddress(a), policy, host, url.protocol === "http:");
    if (why) throw new SsrfBlockedError(why);
  }
}

type LookupCb = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** A `lookup` for net.connect that refuses addresses the policy does not allow. */
function guardedLookup(policy: SsrfPolicy, httpOnly: boolean) {
  return (hostname: string, options: dns.LookupOptions | number, cb: LookupCb): void => {
    const opts: dns.LookupOptions = typeof options === "number" ? { family: options } : options;
    dns.lookup(hostname, { ...opts, all: true, verbatim: true }, (err, addresses) => {
      if (err) return cb(err, "", 0);
      const host = hostname.toLowerCase();
      for (const a of addresses) {
        const why = isAllowedClass(classifyAddress(a.address), policy, host, httpOnly);
        if (why) {
          const e = new SsrfBlockedError(why) as unknown as NodeJS.ErrnoException;
          return cb(e, "", 0);
        }
      }
      if (opts.all) cb(null, addresses);
      else cb(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Builds a fetch that applies `policy` to every request and redirect hop. Bodies are read
 * fully (bounded) so callers get an ordinary `Response`.
 */
export function createGuardedFetch(policy: SsrfPolicy): GuardedFetch & { close(): Promise<void> } {
  const timeoutMs = policy.timeoutMs ?? 10_000;
  const maxBytes = policy.maxBytes ?? 1024 * 1024;
  const maxRedirects = policy.maxRedirects ?? 3;
  const agents: Record<"https" | "http", Agent> = {
    https: new Agent({ connect: { lookup: guardedLookup(policy, false) as never, timeout: timeoutMs }, keepAliveTimeout: 10_000 }),
    http: new Agent({ connect: { lookup: guardedLookup(policy, true) as never, timeout: timeoutMs }, keepAliveTimeout: 10_000 }),
  };

  async function once(url: URL, init: GuardedInit, signal: AbortSignal): Promise<Response> {
    await assertUrlAllowed(url, policy);
    const dispatcher: Dispatcher = url.protocol === "http:" ? agents.http : agents.https;
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => {
      headers[k] = v;
    });
    const body = init.body instanceof URLSearchParams ? init.body.toString() : (init.body ?? undefined);
    let res: Dispatcher.ResponseData;
    try {
      res = await undiciRequest(url, {
        method: (init.method ?? "GET") as Dispatcher.HttpMethod,
        headers,
        body: body as string | Uint8Array | undefined,
        dispatcher,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (cause) {
      if (cause instanceof GatewayError) throw cause;
      const blocked = (cause as { cause?: unknown })?.cause;
      if (blocked instanceof SsrfBlockedError) throw blocked;
      throw new GatewayError("upstream_unreachable", 502, "The upstream's OAuth endpoint could not be reached.", { cause });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > maxBytes) {
          res.body.destroy();
          throw new GatewayError("upstream_response_too_large", 502, "The upstream's OAuth response was too large.");
        }
        chunks.push(chunk as Buffer);
      }
    } catch (cause) {
      if (cause instanceof GatewayError) throw cause;
      throw new GatewayError("upstream_unreachable", 502, "The upstream's OAuth endpoint failed mid-response.", { cause });
    }
    const h = new Headers();
    for (const [k, v] of Object.entries(res.headers)) {
      if (Array.isArray(v)) v.forEach((x) => h.append(k, x));
      else if (v !== undefined) h.set(k, v);
    }
    const noBody = res.statusCode === 204 || res.statusCode === 304 || (init.method ?? "GET") === "HEAD";
    const status = res.statusCode < 200 || res.statusCode > 599 ? 502 : res.statusCode;
    const response = new Response(noBody ? null : Buffer.concat(chunks), { status, headers: h });
    Object.defineProperty(response, "url", { value: url.href });
    return response;
  }

  const guarded = async (input: string | URL, init: GuardedInit = {}): Promise<Response> => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    let url = new URL(input);
    let current = init;
    for (let hop = 0; ; hop++) {
      const res = await once(url, current, signal);
      if (!REDIRECTS.has(res.status) || current.redirect === "manual") return res;
      if (current.redirect === "error") throw new SsrfBlockedError("unexpected redirect");
      const location = res.headers.get("location");
      if (!location || hop >= maxRedirects) return res;
      url = new URL(location, url);
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && current.method === "POST")) {
        current = { ...current, method: "GET", body: undefined };
      }
    }
  };
  return Object.assign(guarded, {
    async close() {
      await Promise.all([agents.https.close(), agents.http.close()]);
    },
  });
}
