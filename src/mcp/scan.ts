/**
 * The few fields of a plain JSON-RPC request that the audit trail and the proxy read — `jsonrpc`,
 * `id`, `method`, and `params.name` / `params.uri` — taken from the body's bytes in one pass, with
 * every other part of the body checked against the JSON grammar and skipped instead of built.
 * `JSON.parse` of a 100-byte `tools/call` (and the string made for it) builds three objects and
 * seven strings: about 9,500 machine instructions on Node 24, counted by callgrind; this pass about
 * 5,000, and it builds nothing but the message it returns.
 *
 * It answers only when it is sure its answer is what `JSON.parse` would give for those fields: a
 * single object whose top-level keys are among the four, without escapes in the fields it keeps,
 * without a `params._meta`, not an `initialize`, and a whole body that is valid JSON. Anything else
 * (a batch, a response, an unknown key, a duplicate key it keeps, an escape in a kept string, a
 * number id that is not a plain integer, nesting deeper than {@link MAX_DEPTH}, invalid JSON) is
 * left to `JSON.parse` by answering `undefined`: the fast way never decides what a body means on
 * its own. `src/mcp/scan.test.ts` checks it against `JSON.parse` on generated and mutated bodies.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8259 JSON
 * @see https://www.jsonrpc.org/specification#request_object
 */
import { Buffer } from "node:buffer";
import type { JsonRpcId, JsonRpcMessage } from "./messages.js";

/** Deepest nesting skipped (beyond it the full parser decides). */
const MAX_DEPTH = 64;
/** Longest integer id taken here (beyond it, `JSON.parse`'s rounding decides). */
const MAX_ID_DIGITS = 15;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

/** Methods whose name string is shared rather than made per request (the usual ones). */
const KNOWN_METHODS = [
  "tools/call",
  "tools/list",
  "prompts/get",
  "prompts/list",
  "resources/read",
  "resources/list",
  "resources/templates/list",
  "resources/subscribe",
  "resources/unsubscribe",
  "completion/complete",
  "logging/setLevel",
  "ping",
  "notifications/initialized",
  "notifications/cancelled",
  "notifications/progress",
  "notifications/roots/list_changed",
];

/**
 * Kept strings of up to {@link SHARED_MAX} ASCII bytes met lately (tool names, resource URIs),
 * by a hash of their length and end bytes: the same name in the next request is the same string,
 * made once — no allocation, and the maps keyed by it find it without hashing it again.
 */
const SHARED_SLOTS = 64;
const SHARED_MAX = 64;
const sharedBytes: Array<Buffer | undefined> = new Array<Buffer | undefined>(SHARED_SLOTS).fill(undefined);
const sharedText: string[] = new Array<string>(SHARED_SLOTS).fill("");

function shared(b: Buffer, start: number, end: number): string {
  const n = end - start;
  const slot = (n * 31 + b[start]! * 7 + b[end - 1]!) & (SHARED_SLOTS - 1);
  const known = sharedBytes[slot];
  if (known !== undefined && known.length === n) {
    let same = true;
    for (let k = 0; k < n && same; k++) same = known[k] === b[start + k];
    if (same) return sharedText[slot]!;
  }
  const text = b.toString("latin1", start, end);
  sharedBytes[slot] = Buffer.from(b.subarray(start, end));
  sharedText[slot] = text;
  return text;
}

/** What the helpers below return for a body the full parser must read (not a position). */
const FAIL = -1;

/** Whether the string {@link plainEnd} last passed was all ASCII. */
let lastAscii = true;
/** The value of the integer id {@link idEnd} last passed. */
let lastId = 0;
/** `params.name` and `params.uri` as {@link paramsEnd} last found them. */
let lastName: string | undefined;
let lastUri: string | undefined;

/** The keys told apart. */
const enum Key {
  Other,
  Jsonrpc,
  Id,
  Method,
  Params,
  Name,
  Uri,
  Meta,
}

/**
 * The request's `jsonrpc`, `id`, `method` and `params.name` / `params.uri` as `JSON.parse` would
 * give them (a message holding only those), or undefined when the body is anything but a plain
 * single request that this pass is sure about (see the file comment).
 */
export function scanRequest(bytes: Uint8Array): JsonRpcMessage | undefined {
  const b = bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = ws(b, 0);
  if (b[i] !== OPEN_OBJECT) return undefined;
  i = ws(b, i + 1);
  let jsonrpc: string | undefined;
  let id: JsonRpcId | undefined;
  let hasId = false;
  let method: string | undefined;
  let params: { name?: string; uri?: string } | undefined;
  if (b[i] === CLOSE_OBJECT) i++;
  else {
    for (;;) {
      if (b[i] !== QUOTE) return undefined;
      const keyEnd = plainEnd(b, i);
      if (keyEnd === FAIL) return undefined;
      const key = keyOf(b, i + 1, keyEnd);
      i = valueAt(b, keyEnd + 1);
      if (i === FAIL) return undefined;
      if (key === Key.Jsonrpc || key === Key.Method) {
        if (b[i] !== QUOTE) return undefined;
        const end = plainEnd(b, i);
        if (end === FAIL) return undefined;
        if (key === Key.Jsonrpc) {
          if (jsonrpc !== undefined) return undefined;
          jsonrpc = end - i === 4 && b[i + 1] === 0x32 && b[i + 2] === 0x2e && b[i + 3] === ZERO ? "2.0" : text(b, i + 1, end);
        } else {
          if (method !== undefined) return undefined;
          method = methodOf(b, i + 1, end);
          if (method === "initialize") return undefined;
        }
        i = end + 1;
      } else if (key === Key.Id) {
        if (hasId) return undefined;
        hasId = true;
        if (b[i] === QUOTE) {
          const end = plainEnd(b, i);
          if (end === FAIL) return undefined;
          id = text(b, i + 1, end);
          i = end + 1;
        } else if (b[i] === 0x6e) {
          if (!bytesAre(b, i, "null")) return undefined;
          id = null;
          i += 4;
        } else {
          i = idEnd(b, i);
          if (i === FAIL) return undefined;
          id = lastId;
        }
      } else if (key === Key.Params) {
        if (params !== undefined || b[i] !== OPEN_OBJECT) return undefined;
        i = paramsEnd(b, i);
        if (i === FAIL) return undefined;
        params = {};
        if (lastName !== undefined) params.name = lastName;
        if (lastUri !== undefined) params.uri = lastUri;
      } else return undefined;
      i = ws(b, i);
      const x = b[i];
      if (x === CLOSE_OBJECT) {
        i++;
        break;
      }
      if (x !== COMMA) return undefined;
      i = ws(b, i + 1);
    }
  }
  if (ws(b, i) !== b.length) return undefined;
  const m: JsonRpcMessage = {};
  if (jsonrpc !== undefined) m.jsonrpc = jsonrpc;
  if (hasId) m.id = id;
  if (method !== undefined) m.method = method;
  if (params !== undefined) m.params = params;
  return m;
}

/** Whether a byte is JSON whitespace. */
export const isJsonSpace = (x: number | undefined): boolean => x === 0x20 || x === 0x0a || x === 0x0d || x === 0x09;

/** The position of the first byte at or after `i` that is not JSON whitespace (the length at the end). */
function ws(b: Uint8Array, i: number): number {
  const n = b.length;
  while (i < n && isJsonSpace(b[i])) i++;
  return i;
}

/** Where a member's value starts after its key ends at `at` (whitespace, `:`, whitespace); FAIL (-1) if no `:`. */
export function valueAt(b: Uint8Array, at: number): number {
  const i = ws(b, at);
  if (b[i] !== COLON) return FAIL;
  return ws(b, i + 1);
}

/**
 * `i` on an opening quote: the position of the closing quote of a string without escapes and
 * control characters (setting {@link lastAscii}), or FAIL.
 */
function plainEnd(b: Buffer, i: number): number {
  const n = b.length;
  let ascii = true;
  for (i++; i < n; i++) {
    const x = b[i]!;
    if (x === QUOTE) {
      lastAscii = ascii;
      return i;
    }
    if (x === BACKSLASH || x < 0x20) return FAIL;
    if (x >= 0x80) ascii = false;
  }
  return FAIL;
}

/** The key whose text is `b[start, end)`. */
function keyOf(b: Buffer, start: number, end: number): Key {
  switch (end - start) {
    case 2:
      return b[start] === 0x69 && b[start + 1] === 0x64 ? Key.Id : Key.Other;
    case 3:
      return bytesAre(b, start, "uri") ? Key.Uri : Key.Other;
    case 4:
      return bytesAre(b, start, "name") ? Key.Name : Key.Other;
    case 5:
      return bytesAre(b, start, "_meta") ? Key.Meta : Key.Other;
    case 6:
      return bytesAre(b, start, "method") ? Key.Method : bytesAre(b, start, "params") ? Key.Params : Key.Other;
    case 7:
      return bytesAre(b, start, "jsonrpc") ? Key.Jsonrpc : Key.Other;
    default:
      return Key.Other;
  }
}

/** Whether `b` holds the (ASCII) `text` at `at`. */
export function bytesAre(b: Uint8Array, at: number, text: string): boolean {
  if (at < 0 || at + text.length > b.length) return false;
  for (let k = 0; k < text.length; k++) if (b[at + k] !== text.charCodeAt(k)) return false;
  return true;
}

/**
 * The text of `b[start, end)`, a string {@link plainEnd} just passed. The whole body decoded as
 * UTF-8 and this slice decoded alone agree: a quote is never part of a multi-byte sequence, so
 * no sequence straddles the string's ends.
 */
function text(b: Buffer, start: number, end: number): string {
  return b.toString(lastAscii ? "latin1" : "utf8", start, end);
}

/** A method name: the shared string of {@link KNOWN_METHODS} when it is one. */
function methodOf(b: Buffer, start: number, end: number): string {
  const n = end - start;
  for (let k = 0; k < KNOWN_METHODS.length; k++) {
    const known = KNOWN_METHODS[k]!;
    if (known.length === n && bytesAre(b, start, known)) return known;
  }
  return text(b, start, end);
}

/**
 * An integer id at `i`: the position after it (its value in {@link lastId}); FAIL for anything
 * but a plain integer of up to {@link MAX_ID_DIGITS} digits (a fraction or an exponent: the full
 * parser's arithmetic decides).
 */
function idEnd(b: Buffer, i: number): number {
  const negative = b[i] === MINUS;
  if (negative) i++;
  const digits = i;
  let v = 0;
  if (b[i] === ZERO) i++;
  else {
    for (; isDigit(b[i]); i++) v = v * 10 + (b[i]! - ZERO);
  }
  const n = i - digits;
  if (n === 0 || n > MAX_ID_DIGITS) return FAIL;
  const after = b[i];
  if (after === 0x2e || after === 0x65 || after === 0x45 || isDigit(after)) return FAIL;
  // `-0` is what JSON.parse gives for "-0" too.
  lastId = negative ? -v : v;
  return i;
}

/**
 * `params` at `i` (its `{`): the position after it, its `name` and `uri` strings in
 * {@link lastName} and {@link lastUri}; FAIL when the full parser must decide.
 */
function paramsEnd(b: Buffer, i: number): number {
  let name: string | undefined;
  let uri: string | undefined;
  let seenName = false;
  let seenUri = false;
  i = ws(b, i + 1);
  if (b[i] !== CLOSE_OBJECT) {
    for (;;) {
      if (b[i] !== QUOTE) return FAIL;
      const keyEnd = plainEnd(b, i);
      if (keyEnd === FAIL) return FAIL;
      const key = keyOf(b, i + 1, keyEnd);
      if (key === Key.Meta) return FAIL;
      i = valueAt(b, keyEnd + 1);
      if (i === FAIL) return FAIL;
      if (key === Key.Name || key === Key.Uri) {
        if (key === Key.Name ? seenName : seenUri) return FAIL;
        if (key === Key.Name) seenName = true;
        else seenUri = true;
        if (b[i] === QUOTE) {
          const end = plainEnd(b, i);
          if (end === FAIL) return FAIL;
          const v = lastAscii && end > i + 1 && end - i - 1 <= SHARED_MAX ? shared(b, i + 1, end) : text(b, i + 1, end);
          if (key === Key.Name) name = v;
          else uri = v;
          i = end + 1;
        } else {
          i = skipValue(b, i, 1);
          if (i === FAIL) return FAIL;
        }
      } else {
        i = skipValue(b, i, 1);
        if (i === FAIL) return FAIL;
      }
      i = ws(b, i);
      const x = b[i];
      if (x === CLOSE_OBJECT) break;
      if (x !== COMMA) return FAIL;
      i = ws(b, i + 1);
    }
  }
  lastName = name;
  lastUri = uri;
  return i + 1;
}

/** The position after the JSON value at `i`; FAIL when it is not valid JSON or nests deeper than {@link MAX_DEPTH}. */
function skipValue(b: Buffer, i: number, depth: number): number {
  const x = b[i];
  if (x === QUOTE) return stringEnd(b, i);
  if (x === OPEN_OBJECT || x === OPEN_ARRAY) {
    if (depth >= MAX_DEPTH) return FAIL;
    const object = x === OPEN_OBJECT;
    const close = object ? CLOSE_OBJECT : CLOSE_ARRAY;
    i = ws(b, i + 1);
    if (b[i] === close) return i + 1;
    for (;;) {
      if (object) {
        if (b[i] !== QUOTE) return FAIL;
        i = stringEnd(b, i);
        if (i === FAIL) return FAIL;
        i = valueAt(b, i);
        if (i === FAIL) return FAIL;
      }
      i = skipValue(b, i, depth + 1);
      if (i === FAIL) return FAIL;
      i = ws(b, i);
      const next = b[i];
      if (next === close) return i + 1;
      if (next !== COMMA) return FAIL;
      i = ws(b, i + 1);
    }
  }
  if (x === 0x74) return bytesAre(b, i, "true") ? i + 4 : FAIL;
  if (x === 0x66) return bytesAre(b, i, "false") ? i + 5 : FAIL;
  if (x === 0x6e) return bytesAre(b, i, "null") ? i + 4 : FAIL;
  if (x === MINUS || isDigit(x)) return numberEnd(b, i);
  return FAIL;
}

/** The position after the string at `i` (on its opening quote), escapes checked; FAIL when it is not a valid JSON string. */
function stringEnd(b: Buffer, i: number): number {
  const n = b.length;
  for (i++; i < n; i++) {
    const x = b[i]!;
    if (x === QUOTE) return i + 1;
    if (x < 0x20) return FAIL;
    if (x === BACKSLASH) {
      const e = b[++i];
      if (e === 0x75) {
        for (let k = 1; k <= 4; k++) if (!isHex(b[i + k])) return FAIL;
        i += 4;
      } else if (e !== QUOTE && e !== BACKSLASH && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) return FAIL;
    }
  }
  return FAIL;
}

function isHex(x: number | undefined): boolean {
  return x !== undefined && (isDigit(x) || (x >= 0x61 && x <= 0x66) || (x >= 0x41 && x <= 0x46));
}

/** The position after the number at `i`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; FAIL when it does not follow that. */
function numberEnd(b: Buffer, i: number): number {
  if (b[i] === MINUS) i++;
  if (b[i] === ZERO) i++;
  else {
    const from = i;
    while (isDigit(b[i])) i++;
    if (i === from) return FAIL;
  }
  if (b[i] === 0x2e) {
    const from = ++i;
    while (isDigit(b[i])) i++;
    if (i === from) return FAIL;
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === 0x2b || b[i] === MINUS) i++;
    const from = i;
    while (isDigit(b[i])) i++;
    if (i === from) return FAIL;
  }
  return i;
}

function isDigit(x: number | undefined): boolean {
  return x !== undefined && x >= ZERO && x <= NINE;
}
