/**
 * `HeaderMap`: a web `Headers` (it is one: `instanceof Headers`, usable as any `HeadersInit`)
 * kept in a plain `Map`, so the gateway can hand over header fields that an HTTP parser already
 * validated — the client's request, the upstream's response — without copying and re-validating
 * every byte as the `Headers` constructor does. Everything a caller adds or changes is validated
 * like `Headers` would (field-name token, no NUL/CR/LF, ByteString), and reads follow the Fetch
 * standard: lower-cased names, repeated fields combined with ", ", `Set-Cookie` kept as a list,
 * iteration sorted by name.
 *
 * @see https://fetch.spec.whatwg.org/#headers-class
 */
import { inspect } from "node:util";

/** RFC 9110 field-name (token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Not allowed in a field value (Fetch: NUL, CR, LF; ByteString: nothing above U+00FF). */
const BAD_VALUE = /[\0\r\n]|[^\0-\xff]/;
const EDGE_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;
const TRUSTED = Symbol("tollgate.trustedHeaders");
/** Names a {@link HeaderMap} holds before it keeps a map of them instead of scanning. */
const INDEX_FROM = 24;

/**
 * Valid field names as given, each with its lower-case form: the same few names are looked up
 * and set on every request (`mcp-session-id`, `origin`, `x-request-id` …), and a map lookup is
 * cheaper than the pattern and the lower-casing. It starts with the names clients commonly send,
 * in the spellings they arrive in (`Content-Type`, `MCP-Protocol-Version` …), and
 * {@link checkName} adds the names it passes. Bounded; once full, further names are only checked.
 */
const VALID_NAMES = new Map<string, string>();
const MAX_VALID_NAMES = 512;
/**
 * The seeded spellings again, by length (spelling, lower-case form, spelling, …), for
 * {@link HeaderMap.fromRawHeaders}: a name the HTTP parser just made is a fresh string, and
 * comparing it with the few spellings of its length costs about a third of hashing it for a map
 * lookup. A known name is then the one string every request shares, so comparing it with another
 * name, or using it as a property key (the upstream's header record), does not read its
 * characters again.
 */
const KNOWN_BY_LENGTH: string[][] = [];
function know(given: string, lower: string): void {
  if (VALID_NAMES.has(given)) return;
  VALID_NAMES.set(given, lower);
  (KNOWN_BY_LENGTH[given.length] ??= []).push(given, lower);
}
for (const name of [
  "host", "connection", "keep-alive", "content-type", "content-length", "transfer-encoding", "accept", "accept-encoding",
  "accept-language", "authorization", "user-agent", "origin", "referer", "cookie", "cache-control", "pragma", "expect",
  "te", "upgrade", "if-none-match", "if-modified-since", "last-event-id", "mcp-session-id", "mcp-protocol-version",
  "x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "forwarded", "traceparent",
  "tracestate", "baggage", "sec-fetch-mode", "sec-fetch-site", "sec-fetch-dest", "priority", "dnt",
]) {
  know(name, name);
  know(name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase()), name);
  know(name.toUpperCase(), name);
}
for (const given of ["MCP-Session-Id", "MCP-Protocol-Version", "Last-Event-ID", "X-Request-ID"]) know(given, given.toLowerCase());

/** The lower-case form of a field name the HTTP parser passed: a shared known one, or lower-cased. */
function rawName(given: string): string {
  const known = KNOWN_BY_LENGTH[given.length];
  if (known !== undefined) for (let i = 0; i < known.length; i += 2) if (known[i] === given) return known[i + 1]!;
  return given.toLowerCase();
}

/** The lower-cased name; throws a TypeError for a name that is not a field-name token. */
function checkName(name: string): string {
  const known = VALID_NAMES.get(name);
  if (known !== undefined) return known;
  if (!TOKEN.test(name)) throw new TypeError(`Invalid header name: "${name}"`);
  const lower = name.toLowerCase();
  if (VALID_NAMES.size < MAX_VALID_NAMES) VALID_NAMES.set(name, lower);
  return lower;
}

const isEdgeSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

function checkValue(name: string, value: string): string {
  let v = String(value);
  // Most values have no whitespace at either end: no replace (and no new string) for them.
  if (v.length > 0 && (isEdgeSpace(v.charCodeAt(0)) || isEdgeSpace(v.charCodeAt(v.length - 1)))) v = v.replace(EDGE_WHITESPACE, "");
  if (BAD_VALUE.test(v)) throw new TypeError(`Invalid value for header "${name}"`);
  return v;
}

/**
 * The base of {@link HeaderMap}: its prototype is `Headers.prototype` (so a HeaderMap is
 * `instanceof Headers`), but constructing it builds none of undici's internal header list,
 * which a HeaderMap never uses — it overrides every method and accessor of `Headers`.
 */
function HeadersBase(): void {}
HeadersBase.prototype = Headers.prototype;

export class HeaderMap extends (HeadersBase as unknown as typeof Headers) {
  /**
   * The fields, one entry per lower-case name (repeated names combined), in insertion order:
   * two parallel arrays, searched from the front. A request or answer has a dozen fields or so;
   * a scan of that many names costs less than a `Map`'s hashing of each fresh name and the
   * growth of its table, and a map (`#index`) is kept only once there are more than
   * {@link INDEX_FROM} names.
   */
  #names: string[] = [];
  #values: string[] = [];
  #index: Map<string, number> | undefined;
  #cookies: string[] | undefined;
  #sorted: Array<[string, string]> | undefined;

  constructor(init?: HeadersInit) {
    super();
    if (init === undefined || (init as unknown) === TRUSTED) return;
    if (init instanceof Headers || Array.isArray(init) || typeof (init as unknown as Iterable<unknown>)[Symbol.iterator] === "function") {
      for (const pair of init as Iterable<[string, string]>) {
        if (pair.length !== 2) throw new TypeError("Header pairs must have exactly two items");
        this.append(pair[0], pair[1]);
      }
    } else {
      for (const name of Object.keys(init)) this.append(name, (init as Record<string, string>)[name]!);
    }
  }

  /**
   * From Node's `rawHeaders` (name, value, name, value, …) of a request the HTTP server parsed:
   * names and values were validated by the parser, so they are only lower-cased and combined.
   */
  static fromRawHeaders(raw: readonly string[]): HeaderMap {
    const h = new HeaderMap(TRUSTED as never);
    for (let i = 0; i < raw.length; i += 2) h.#add(rawName(raw[i]!), raw[i + 1]!);
    return h;
  }

  /**
   * From fields undici's HTTP parser produced (lower-case names), taken as they are: that parser
   * refuses a response whose field values hold control characters (NUL, CR, LF, DEL, anything
   * below 0x20 but HTAB), the same characters Node's `writeHead` refuses, so every value it hands
   * over can be written back. `sendOnce`'s tests check that refusal against a raw socket.
   */
  static fromParsed(entries: ReadonlyArray<readonly [string, string]>): HeaderMap {
    const h = new HeaderMap(TRUSTED as never);
    for (let i = 0; i < entries.length; i++) h.#add(entries[i]![0], entries[i]![1]);
    return h;
  }

  /** Where the lower-case `name` is held; -1 if it is not. */
  #find(name: string): number {
    const names = this.#names;
    if (names.length > INDEX_FROM) {
      let index = this.#index;
      if (index === undefined) {
        index = this.#index = new Map();
        for (let i = 0; i < names.length; i++) index.set(names[i]!, i);
      }
      return index.get(name) ?? -1;
    }
    for (let i = 0; i < names.length; i++) if (names[i] === name) return i;
    return -1;
  }

  /** Adds a field (lower-case name, value as it is), combining it with one of the same name. */
  #add(name: string, value: string): void {
    this.#sorted = undefined;
    if (name === "set-cookie") {
      (this.#cookies ??= []).push(value);
      return;
    }
    const at = this.#find(name);
    if (at >= 0) this.#values[at] = `${this.#values[at]!}, ${value}`;
    else this.#push(name, value);
  }

  #push(name: string, value: string): void {
    this.#index?.set(name, this.#names.length);
    this.#names.push(name);
    this.#values.push(value);
  }

  override append(name: string, value: string): void {
    this.#add(checkName(String(name)), checkValue(name, value));
  }

  override set(name: string, value: string): void {
    const key = checkName(String(name));
    const v = checkValue(name, value);
    this.#sorted = undefined;
    if (key === "set-cookie") {
      this.#cookies = [v];
      return;
    }
    const at = this.#find(key);
    if (at >= 0) this.#values[at] = v;
    else this.#push(key, v);
  }

  override delete(name: string): void {
    const key = checkName(String(name));
    this.#sorted = undefined;
    if (key === "set-cookie") {
      this.#cookies = undefined;
      return;
    }
    const at = this.#find(key);
    if (at < 0) return;
    this.#names.splice(at, 1);
    this.#values.splice(at, 1);
    this.#index = undefined;
  }

  override get(name: string): string | null {
    // A name already held is a valid lower-case one: found without checking it again.
    const held = this.#find(name);
    if (held >= 0) return this.#values[held]!;
    const key = checkName(String(name));
    // A lower-case name was looked up already.
    const at = key === name ? -1 : this.#find(key);
    if (at >= 0) return this.#values[at]!;
    if (key === "set-cookie" && this.#cookies?.length) return this.#cookies.join(", ");
    return null;
  }

  override has(name: string): boolean {
    if (this.#find(name) >= 0) return true;
    const key = checkName(String(name));
    return (key !== name && this.#find(key) >= 0) || (key === "set-cookie" && !!this.#cookies?.length);
  }

  override getSetCookie(): string[] {
    return this.#cookies ? [...this.#cookies] : [];
  }

  /** Name/value pairs in the standard's order: sorted by name, each `Set-Cookie` on its own. */
  #entries(): Array<[string, string]> {
    if (this.#sorted) return this.#sorted;
    const out = this.fields();
    // Names are unique but for `set-cookie`, whose values keep their order (the sort is stable).
    out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return (this.#sorted = out);
  }

  override forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    for (const [k, v] of this.#entries()) callback.call(thisArg, v, k, this);
  }

  override *entries(): HeadersIterator<[string, string]> {
    for (const [k, v] of this.#entries()) yield [k, v];
  }

  override *keys(): HeadersIterator<string> {
    for (const [k] of this.#entries()) yield k;
  }

  override *values(): HeadersIterator<string> {
    for (const [, v] of this.#entries()) yield v;
  }

  override [Symbol.iterator](): HeadersIterator<[string, string]> {
    return this.entries();
  }

  /** How many fields {@link nameAt} and {@link valueAt} reach (`Set-Cookie` not among them). */
  get fieldCount(): number {
    return this.#names.length;
  }

  /** The lower-case name of the `i`-th field, in insertion order (repeated names combined). */
  nameAt(i: number): string {
    return this.#names[i]!;
  }

  /** The value of the `i`-th field. */
  valueAt(i: number): string {
    return this.#values[i]!;
  }

  /**
   * Every field in insertion order, unsorted (cheaper than the standard iteration; for copying
   * onto another hop). `Set-Cookie` values come last, one pair each.
   */
  fields(): Array<[string, string]> {
    const out: Array<[string, string]> = this.#names.map((n, i) => [n, this.#values[i]!]);
    if (this.#cookies) for (const c of this.#cookies) out.push(["set-cookie", c]);
    return out;
  }

  /** The fields as Node's `writeHead` takes them (`Set-Cookie` as a list). */
  toNodeHeaders(): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    const names = this.#names;
    const values = this.#values;
    for (let i = 0; i < names.length; i++) out[names[i]!] = values[i]!;
    if (this.#cookies?.length) out["set-cookie"] = [...this.#cookies];
    return out;
  }

  [inspect.custom](): string {
    return `HeaderMap ${inspect(Object.fromEntries(this.#entries()))}`;
  }
}
