/**
 * The request URL, built only from a checked authority and the request target's own path.
 *
 * The `Host` field (or the authority of an absolute-form target) is attacker input: a value like
 * `gw:8080/metrics?` must not become part of the URL the router reads, or it would choose the
 * route instead of the path the client (and any front proxy) saw. So the authority must be a
 * plain `host[:port]` — a registered name, an IPv4 address or a bracketed IPv6 literal — and the
 * target must be origin-form (`/path?query`) or absolute-form `http(s)://authority/path?query`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9112#section-3.2 request-target forms
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-7.2 Host and :authority
 * @see https://www.rfc-editor.org/rfc/rfc3986#section-3.2.2 host syntax
 */
import { GatewayError } from "../errors.js";

/**
 * `host[:port]`: a DNS-style name (letters, digits, `-`, `.`, `_`), an IPv4 address, or an
 * IPv6 literal in brackets. No userinfo, path, query, fragment, space or percent sign.
 */
const AUTHORITY = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/;
const ABSOLUTE = /^https?:\/\/([^/?#]*)([/?#]|$)/i;

/** The last authority that passed: most connections send the same `Host` again and again. */
let lastGood = "";

/** True when `value` is a usable `host[:port]`. */
export function validAuthority(value: string): boolean {
  if (value === lastGood) return true;
  if (!AUTHORITY.test(value)) return false;
  lastGood = value;
  return true;
}

/** The checked URL of a request and, for an absolute-form target, the authority that replaces `Host`. */
export interface RequestTarget {
  url: string;
  /** Set when the target was absolute-form: this authority wins over the `Host` field. */
  authority: string | undefined;
  /**
   * The URL's pathname, when it is known without parsing the URL: an origin-form target that is a
   * plain path (see {@link PLAIN_PATH}) under an authority the URL parser has accepted.
   */
  path?: string | undefined;
}

/**
 * A path the URL parser leaves as it is: segments of unreserved characters other than `.` (so no
 * dot segments), no percent-encoding, query or fragment.
 */
const PLAIN_PATH = /^(?:\/[A-Za-z0-9_~-]+)+\/?$|^\/$/;
/** The last authority the URL parser accepted (the parser is stricter than {@link AUTHORITY}). */
let lastParsed = "";
/** The last path that passed {@link PLAIN_PATH}: clients send the same endpoint again and again. */
let lastPlain = "/";

/** `path` when `http://<authority><path>` is a URL whose pathname is `path` itself. */
function plainPath(authority: string, path: string, url: string): string | undefined {
  if (path !== lastPlain) {
    if (!PLAIN_PATH.test(path)) return undefined;
    lastPlain = path;
  }
  if (authority !== lastParsed) {
    if (!URL.canParse(url)) return undefined;
    lastParsed = authority;
  }
  return path;
}

const badHost = () => new GatewayError("bad_host", 400, "The Host header is not a valid host[:port].");
const badTarget = () => new GatewayError("bad_request_target", 400, "The request target is not a valid path.");

/**
 * Builds `http://<authority><path>` from a request's `Host` field and raw target, or throws a
 * 400 {@link GatewayError}. A missing `Host` (HTTP/1.0) is `localhost`; Node's parser already
 * refuses HTTP/1.1 requests without one.
 */
export function requestTarget(host: string | undefined, target: string): RequestTarget {
  if (target.charCodeAt(0) === 47 /* "/" */) {
    // A backslash is a path separator to the URL parser: "/a\..\b" would route as "/b".
    if (target.includes("\\")) throw badTarget();
    const h = host ?? "localhost";
    if (!validAuthority(h)) throw badHost();
    const url = `http://${h}${target}`;
    return { url, authority: undefined, path: plainPath(h, target, url) };
  }
  const m = ABSOLUTE.exec(target);
  if (!m) throw badTarget();
  const authority = m[1]!;
  if (!validAuthority(authority)) throw badHost();
  const rest = target.slice(m[0].length - m[2]!.length);
  if (rest.includes("\\") || rest.startsWith("#")) throw badTarget();
  return { url: `http://${authority}${rest.startsWith("/") ? rest : `/${rest}`}`, authority };
}
