/**
 * The few fields of a plain JSON-RPC request that the audit trail and the proxy read — `jsonrpc`,
 * `id`, `method`, and `params.name` / `params.uri` — taken from the body's bytes in one pass, with
 * every other part of the body checked against the JSON grammar and skipped instead of built.
 * `JSON.parse` of a 100-byte `tools/call` builds three objects and seven strings and costs about
 * 8,500 machine instructions (Node 24); this pass costs a fraction of that.
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

/** Where the scan is: the body and the position of the next byte to read. */
interface Cursor {
  b: Buffer;
  i: number;
}

/**
 * The request's `jsonrpc`, `id`, `method` and `params.name` / `params.uri` as `JSON.parse` would
 * give them (a message holding only those), or undefined when the body is anything but a plain
 * single request that this pass is sure about (see the file comment).
 */
export function scanRequest(bytes: Uint8Array): JsonRpcMessage | undefined {
  const b = bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const c: Cursor = { b, i: 0 };
  if (ws(c) !== OPEN_OBJECT) return undefined;
  c.i++;
  let jsonrpc: string | undefined;
  let id: JsonRpcId | undefined;
  let hasId = false;
  let method: string | undefined;
  let params: { name?: string; uri?: string } | undefined;
  if (ws(c) === CLOSE_OBJECT) c.i++;
  else {
    for (;;) {
      if (b[c.i] !== QUOTE) return undefined;
      const key = keyOf(c);
      if (key === undefined || !colon(c)) return undefined;
      if (key === "jsonrpc") {
        if (jsonrpc !== undefined || b[c.i] !== QUOTE) return undefined;
        jsonrpc = keptString(c, Kept.Version);
        if (jsonrpc === undefined) return undefined;
      } else if (key === "id") {
        if (hasId) return undefined;
        hasId = true;
        const v = idValue(c);
        if (v === undefined) return undefined;
        id = v;
      } else if (key === "method") {
        if (method !== undefined || b[c.i] !== QUOTE) return undefined;
        method = keptString(c, Kept.Method);
        if (method === undefined || method === "initialize") return undefined;
      } else if (key === "params") {
        if (params !== undefined || b[c.i] !== OPEN_OBJECT) return undefined;
        params = paramsOf(c);
        if (params === undefined) return undefined;
      } else return undefined;
      const next = ws(c);
      c.i++;
      if (next === CLOSE_OBJECT) break;
      if (next !== COMMA || ws(c) !== QUOTE) return undefined;
    }
  }
  if (ws(c) !== -1) return undefined;
  const m: JsonRpcMessage = {};
  if (jsonrpc !== undefined) m.jsonrpc = jsonrpc;
  if (hasId) m.id = id;
  if (method !== undefined) m.method = method;
  if (params !== undefined) m.params = params;
  return m;
}

/** Which field a kept string is (how it may be shared). */
const enum Kept {
  Version,
  Id,
  Method,
  Name,
}

/** The byte at the cursor after JSON whitespace (the cursor is left on it); -1 at the end. */
function ws(c: Cursor): number {
  const b = c.b;
  let i = c.i;
  for (; i < b.length; i++) {
    const x = b[i]!;
    if (x !== 0x20 && x !== 0x0a && x !== 0x0d && x !== 0x09) {
      c.i = i;
      return x;
    }
  }
  c.i = i;
  return -1;
}

/** After a key: the `:` and the whitespace around it; false when it is not there. */
function colon(c: Cursor): boolean {
  if (ws(c) !== COLON) return false;
  c.i++;
  ws(c);
  return true;
}

/** The keys this pass tells apart; any other key is `OTHER`. */
const OTHER = "";

/** A key at the cursor (on its opening quote): one of the kept names, OTHER, or undefined (an escape, or no end). */
function keyOf(c: Cursor): string | undefined {
  const b = c.b;
  const start = c.i + 1;
  let i = start;
  for (; i < b.length; i++) {
    const x = b[i]!;
    if (x === QUOTE) break;
    if (x === BACKSLASH || x < 0x20) return undefined;
  }
  if (i >= b.length) return undefined;
  c.i = i + 1;
  const n = i - start;
  if (n === 2 && b[start] === 0x69 && b[start + 1] === 0x64) return "id";
  if (n === 3 && b[start] === 0x75 && b[start + 1] === 0x72 && b[start + 2] === 0x69) return "uri";
  if (n === 4 && bytesAre(b, start, "name")) return "name";
  if (n === 5 && bytesAre(b, start, "_meta")) return "_meta";
  if (n === 6) return bytesAre(b, start, "method") ? "method" : bytesAre(b, start, "params") ? "params" : OTHER;
  if (n === 7 && bytesAre(b, start, "jsonrpc")) return "jsonrpc";
  return OTHER;
}

function bytesAre(b: Buffer, at: number, text: string): boolean {
  for (let k = 0; k < text.length; k++) if (b[at + k] !== text.charCodeAt(k)) return false;
  return true;
}

/**
 * A string value at the cursor (on its opening quote) that is kept: its text as `JSON.parse`
 * gives it, or undefined when it holds an escape or a control character, or does not end.
 * Method names come back as the shared strings of {@link KNOWN_METHODS} when they are one, and
 * short names as {@link shared} ones.
 */
function keptString(c: Cursor, kind: Kept): string | undefined {
  const b = c.b;
  const start = c.i + 1;
  let ascii = true;
  let i = start;
  for (; i < b.length; i++) {
    const x = b[i]!;
    if (x === QUOTE) break;
    if (x === BACKSLASH || x < 0x20) return undefined;
    if (x >= 0x80) ascii = false;
  }
  if (i >= b.length) return undefined;
  c.i = i + 1;
  if (kind === Kept.Method) {
    for (let k = 0; k < KNOWN_METHODS.length; k++) {
      const known = KNOWN_METHODS[k]!;
      if (known.length === i - start && bytesAre(b, start, known)) return known;
    }
  } else if (kind === Kept.Version && i - start === 3 && b[start] === 0x32 && b[start + 1] === 0x2e && b[start + 2] === ZERO) return "2.0";
  else if (kind === Kept.Name && ascii && i > start && i - start <= SHARED_MAX) return shared(b, start, i);
  // The whole body decoded as UTF-8 and this slice decoded alone agree: a quote is never part of
  // a multi-byte sequence, so no sequence straddles the string's ends.
  return b.toString(ascii ? "latin1" : "utf8", start, i);
}

/** An id at the cursor: a string without escapes, a plain integer of up to 15 digits, or null; undefined otherwise. */
function idValue(c: Cursor): JsonRpcId | undefined {
  const b = c.b;
  const x = b[c.i];
  if (x === QUOTE) return keptString(c, Kept.Id);
  if (x === 0x6e) {
    if (!bytesAre(b, c.i, "null")) return undefined;
    c.i += 4;
    return null;
  }
  const start = c.i;
  let i = start;
  if (b[i] === MINUS) i++;
  const digits = i;
  if (b[i] === ZERO) i++;
  else while (i < b.length && b[i]! >= ZERO && b[i]! <= NINE) i++;
  const n = i - digits;
  if (n === 0 || n > MAX_ID_DIGITS) return undefined;
  // A fraction or an exponent: the full parser's arithmetic decides.
  const after = b[i];
  if (after === 0x2e || after === 0x65 || after === 0x45 || (after !== undefined && after >= ZERO && after <= NINE)) return undefined;
  c.i = i;
  let v = 0;
  for (let k = digits; k < i; k++) v = v * 10 + (b[k]! - ZERO);
  // `-0` is what JSON.parse gives for "-0" too.
  return b[start] === MINUS ? -v : v;
}

/** `params` at the cursor (on its `{`): its `name` and `uri` strings; undefined when the full parser must decide. */
function paramsOf(c: Cursor): { name?: string; uri?: string } | undefined {
  const b = c.b;
  c.i++;
  const out: { name?: string; uri?: string } = {};
  if (ws(c) === CLOSE_OBJECT) {
    c.i++;
    return out;
  }
  let seenName = false;
  let seenUri = false;
  for (;;) {
    if (b[c.i] !== QUOTE) return undefined;
    const key = keyOf(c);
    if (key === undefined || key === "_meta" || !colon(c)) return undefined;
    if ((key === "name" && !seenName) || (key === "uri" && !seenUri)) {
      if (key === "name") seenName = true;
      else seenUri = true;
      if (b[c.i] === QUOTE) {
        const v = keptString(c, Kept.Name);
        if (v === undefined) return undefined;
        if (key === "name") out.name = v;
        else out.uri = v;
      } else if (!skipValue(c, 1)) return undefined;
    } else if (key === "name" || key === "uri") return undefined;
    else if (!skipValue(c, 1)) return undefined;
    const next = ws(c);
    c.i++;
    if (next === CLOSE_OBJECT) return out;
    if (next !== COMMA || ws(c) !== QUOTE) return undefined;
  }
}

/** Moves the cursor past one JSON value (it is on the value's first byte); false when it is not valid JSON or nests too deep. */
function skipValue(c: Cursor, depth: number): boolean {
  const b = c.b;
  const x = b[c.i];
  if (x === QUOTE) return skipString(c);
  if (x === OPEN_OBJECT || x === OPEN_ARRAY) {
    if (depth >= MAX_DEPTH) return false;
    const object = x === OPEN_OBJECT;
    const close = object ? CLOSE_OBJECT : CLOSE_ARRAY;
    c.i++;
    if (ws(c) === close) {
      c.i++;
      return true;
    }
    for (;;) {
      if (object) {
        if (b[c.i] !== QUOTE || !skipString(c) || !colon(c)) return false;
      }
      if (!skipValue(c, depth + 1)) return false;
      const next = ws(c);
      c.i++;
      if (next === close) return true;
      if (next !== COMMA) return false;
      ws(c);
    }
  }
  if (x === 0x74) return literal(c, "true");
  if (x === 0x66) return literal(c, "false");
  if (x === 0x6e) return literal(c, "null");
  if (x === MINUS || (x !== undefined && x >= ZERO && x <= NINE)) return skipNumber(c);
  return false;
}

function literal(c: Cursor, text: string): boolean {
  if (!bytesAre(c.b, c.i, text)) return false;
  c.i += text.length;
  return true;
}

/** Past a string (the cursor on its opening quote), escapes checked; false when it is not a valid JSON string. */
function skipString(c: Cursor): boolean {
  const b = c.b;
  for (let i = c.i + 1; i < b.length; i++) {
    const x = b[i]!;
    if (x === QUOTE) {
      c.i = i + 1;
      return true;
    }
    if (x < 0x20) return false;
    if (x === BACKSLASH) {
      const e = b[++i];
      if (e === 0x75) {
        for (let k = 1; k <= 4; k++) if (!isHex(b[i + k])) return false;
        i += 4;
      } else if (e !== QUOTE && e !== BACKSLASH && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) return false;
    }
  }
  return false;
}

function isHex(x: number | undefined): boolean {
  return x !== undefined && ((x >= ZERO && x <= NINE) || (x >= 0x61 && x <= 0x66) || (x >= 0x41 && x <= 0x46));
}

/** Past a number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; false when it does not follow that. */
function skipNumber(c: Cursor): boolean {
  const b = c.b;
  let i = c.i;
  if (b[i] === MINUS) i++;
  if (b[i] === ZERO) i++;
  else {
    const from = i;
    while (isDigit(b[i])) i++;
    if (i === from) return false;
  }
  if (b[i] === 0x2e) {
    const from = ++i;
    while (isDigit(b[i])) i++;
    if (i === from) return false;
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === 0x2b || b[i] === MINUS) i++;
    const from = i;
    while (isDigit(b[i])) i++;
    if (i === from) return false;
  }
  c.i = i;
  return true;
}

function isDigit(x: number | undefined): boolean {
  return x !== undefined && x >= ZERO && x <= NINE;
}
