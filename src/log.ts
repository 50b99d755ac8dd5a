/**
 * Structured JSON logging (pino) with secret redaction.
 * Anything that could carry a credential is redacted by path; free-text messages must never
 * interpolate secrets in the first place.
 */
import { pino, type Logger } from "pino";
import { Buffer } from "node:buffer";
import { LOG_SOLE_WRITE_BYTES, LOG_WRITE_BYTES, LogWriter } from "./log-writer.js";

export type { Logger };

/** Paths pino censors wherever they appear in a log object. */
export const REDACT_PATHS = [
  "authorization",
  "*.authorization",
  "headers.authorization",
  "headers.cookie",
  "*.headers.authorization",
  "*.headers.cookie",
  "*.headers[\"set-cookie\"]",
  "token",
  "*.token",
  "access_token",
  "*.access_token",
  "refresh_token",
  "*.refresh_token",
  "id_token",
  "*.id_token",
  "code",
  "*.code",
  "code_verifier",
  "*.code_verifier",
  "client_secret",
  "*.client_secret",
  "clientSecret",
  "*.clientSecret",
  "ticket",
  "*.ticket",
  "password",
  "*.password",
  "secret",
  "*.secret",
];

export { LOG_FLUSH_MS, LOG_SOLE_WRITE_BYTES, LOG_WRITE_BYTES } from "./log-writer.js";

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level?: string;
  /** A stream to write to instead of stdout (tests that capture output); written unbuffered. */
  destination?: NodeJS.WritableStream;
  /** A file descriptor or path to write to, buffered like stdout (default: 1, stdout). */
  file?: number | string;
  /**
   * Bytes that may wait for a stalled destination before lines are dropped (default 32 MiB,
   * see {@link LogWriter}).
   */
  maxQueuedBytes?: number;
  /**
   * Other processes write to the same destination at the same time: each write then holds at
   * most {@link LOG_WRITE_BYTES} (PIPE_BUF), so lines never interleave mid-line. Default false:
   * writes of up to {@link LOG_SOLE_WRITE_BYTES}. The workers of `--workers N` and their
   * primary share stdout this way.
   */
  sharedOutput?: boolean;
}

/**
 * Creates the gateway logger. It writes to stdout (or `file`) through a {@link LogWriter}, the
 * way high-rate servers write access logs: lines collect in a buffer and go out in one
 * `write(2)` made from the event loop's check phase (never inside a request's own handling) once
 * it is full, and at least every {@link LOG_FLUSH_MS}. Each write holds whole lines: at most
 * {@link LOG_SOLE_WRITE_BYTES}, or {@link LOG_WRITE_BYTES} (PIPE_BUF) where several processes
 * write to the destination at once (`sharedOutput`), so their lines never interleave mid-line.
 * Nothing is lost on a clean exit: shutdown awaits {@link flushLog}, and the writer writes what
 * is left synchronously when the process exits.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const options = {
    level: opts.level ?? "info",
    base: { service: "tollgate" },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    timestamp: isoTimestamp,
  };
  if (opts.destination) return pino(options, opts.destination as never);
  let log: Logger | undefined;
  const writer = new LogWriter({
    dest: opts.file ?? 1,
    chunkBytes: opts.sharedOutput ? LOG_WRITE_BYTES : LOG_SOLE_WRITE_BYTES,
    maxQueuedBytes: opts.maxQueuedBytes,
    onDropped: (dropped) => log?.warn({ dropped }, "log output stalled; lines dropped"),
  });
  log = pino(options, writer);
  return log;
}

/** The buffered writer behind a logger made by {@link createLogger} (undefined for a `destination`). */
export function logWriterOf(log: Logger): LogWriter | undefined {
  const stream = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  return stream instanceof LogWriter ? stream : undefined;
}

/**
 * Writes out every buffered line and resolves once it is written (or after `timeoutMs`, so a
 * stalled stdout cannot hold up shutdown forever). Safe on any logger.
 */
export function flushLog(log: Logger, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    try {
      log.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

/** What the access log records about one request. */
export interface AccessEntry {
  requestId: string;
  method: string;
  path: string;
  /** The route's operationId, `system` for the gateway's own endpoints, `-` when none matched. */
  route: string;
  status: number;
  /** Time until the response head was ready. */
  ms: number;
}

/** Field names that are censored wherever they appear (the last segment of each redact path). */
const REDACTED_NAMES = new Set(REDACT_PATHS.map((p) => /([A-Za-z_-]+)"?\]?$/.exec(p)![1]!));

const flatLoggers = new WeakMap<Logger, Logger>();

/**
 * A child of `log` for lines the gateway builds itself from flat objects of scalars (the access
 * log, audit events): it skips pino's path redaction, which walks every key of every line against
 * every path and was the largest single cost of logging a request. Pair it with
 * {@link censorFlat} for objects whose keys are not fixed.
 */
export function flatLogger(log: Logger): Logger {
  let child = flatLoggers.get(log);
  if (!child) {
    child = log.child({}, { redact: [] });
    flatLoggers.set(log, child);
  }
  return child;
}

/**
 * The same redaction as the logger's, for a flat object: any key named like a redacted field
 * (`token`, `code`, `secret`, …) is censored. Returns the object itself when nothing matches.
 */
export function censorFlat<T extends object>(obj: T): T {
  let out: Record<string, unknown> | undefined;
  for (const key in obj) {
    if (REDACTED_NAMES.has(key)) {
      out ??= { ...(obj as Record<string, unknown>) };
      out[key] = "[redacted]";
    }
  }
  return (out ?? obj) as T;
}

let lastMs = -1;
let lastTime = "";
let lastSecond = -1;
let secondPrefix = "";
const MS_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0"));
/**
 * pino's ISO timestamp (`,"time":"…"`), formatted once per millisecond: a busy gateway writes
 * several lines in the same millisecond, and `Date#toISOString` is among the dearer steps of a
 * line — so it runs once per second, and each new millisecond only swaps the last digits.
 */
export function isoTimestamp(): string {
  return isoTimestampAt(Date.now());
}

/** `,"time":"` and the ISO time of a whole second up to its milliseconds (`…T00:03:15.`). */
function timePrefixOf(second: number): string {
  const iso = new Date(second).toISOString();
  return `,"time":"${iso.slice(0, iso.length - 4)}`;
}

/** {@link isoTimestamp} of another moment (ms since the epoch), for a line written after the fact. */
export function isoTimestampAt(epochMs: number): string {
  const now = Math.floor(epochMs);
  if (now !== lastMs) {
    lastMs = now;
    const ms = now % 1000;
    const second = now - ms;
    if (second !== lastSecond) {
      lastSecond = second;
      secondPrefix = timePrefixOf(second);
    }
    lastTime = `${secondPrefix}${MS_DIGITS[ms]}Z"`;
  }
  return lastTime;
}

type FlatValue = string | number | boolean | undefined;
type FlatLevel = "info" | "debug" | "warn";

/** How {@link writeFlat} writes through one flat logger, or `false` where pino must do it. */
interface FlatWriter {
  prefix: Record<number, string>;
  time: () => string;
  chindings: string;
  end: string;
  /** The same texts as bytes, for the encoder (level prefixes as they are first used). */
  heads: Record<number, Uint8Array>;
  chindingsBytes: Uint8Array;
  endBytes: Uint8Array;
  stream: { write(line: string): unknown };
  /** The stream when it is a {@link LogWriter} (lines are then encoded into it). */
  writer: LogWriter | undefined;
}
const flatWriters = new WeakMap<Logger, FlatWriter | false>();

/** How a key is written: the text before its value, and whether its value is censored. */
interface FlatKey {
  prefix: string;
  redacted: boolean;
}
const FLAT_KEYS = new Map<string, FlatKey>();
function flatKey(key: string): FlatKey {
  let k = FLAT_KEYS.get(key);
  if (k === undefined) {
    k = { prefix: `,${JSON.stringify(key)}:`, redacted: REDACTED_NAMES.has(key) };
    if (FLAT_KEYS.size < 1000) FLAT_KEYS.set(key, k);
  }
  return k;
}

/** What JSON must escape in a string, and surrogates (a lone one becomes a `\u` escape). */
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

/**
 * A string as JSON: quoted as it is when nothing in it needs escaping (the common case: ids,
 * names, methods), else by `JSON.stringify` — the same text either way, at half the cost.
 */
export function flatString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/**
 * A number as JSON, the same text `String(n)` gives (`null` when not finite). Latencies are
 * rounded to hundredths: those are written from their integer hundredths, which is several
 * times cheaper than V8's shortest-round-trip conversion of a fraction. (For 0 < n < 1e13 with
 * at most two decimals, that conversion yields exactly these digits.)
 */
export function flatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  const c = hundredthsOf(n);
  if (c !== undefined) {
    const int = Math.floor(c / 100);
    const frac = c - int * 100;
    return frac % 10 === 0 ? `${int}.${frac / 10}` : `${int}.${frac < 10 ? "0" : ""}${frac}`;
  }
  return Number.isFinite(n) ? String(n) : "null";
}

/**
 * `n` in hundredths, when it is a positive number below 1e13 with at most two decimals (its
 * shortest round-trip digits are then exactly those of its hundredths); undefined otherwise.
 */
function hundredthsOf(n: number): number | undefined {
  const c = Math.round(n * 100);
  return c > 0 && c < 1e15 && c / 100 === n ? c : undefined;
}

/** A redacted field's value, as JSON. */
const REDACTED_JSON = '"[redacted]"';
const EMPTY_BYTES = new Uint8Array(0);

function flatWriterOf(flat: Logger): FlatWriter | false {
  let w = flatWriters.get(flat);
  if (w !== undefined) return w;
  const sym = pino.symbols;
  const l = flat as unknown as Record<symbol, unknown>;
  const formatters = l[sym.formattersSym] as { log?: unknown };
  const hooks = l[sym.hooksSym] as { logMethod?: unknown; streamWrite?: unknown };
  const stringifiers = l[sym.stringifiersSym] as Record<string | symbol, unknown>;
  const stream = l[sym.streamSym] as FlatWriter["stream"] & Record<symbol, unknown>;
  // Only the plain configuration createLogger makes: anything that changes how pino builds or
  // hands over a line (mixins, formatters, hooks, nesting, stringifiers, metadata streams) keeps
  // pino's own path.
  const plain =
    !l[sym.mixinSym] &&
    !formatters?.log &&
    !hooks?.logMethod &&
    !hooks?.streamWrite &&
    !l[sym.nestedKeySym] &&
    !l[(sym as unknown as Record<string, symbol>).msgPrefixSym!] &&
    l[sym.messageKeySym] === "msg" &&
    Object.keys(stringifiers ?? {}).length === 0 &&
    !stringifiers?.[sym.wildcardFirstSym] &&
    stream?.[sym.needsMetadataGsym] !== true;
  const chindings = l[sym.chindingsSym] as string;
  const end = l[sym.endSym] as string;
  w = plain
    ? {
        prefix: l[sym.lsCacheSym] as Record<number, string>,
        time: l[sym.timeSym] as () => string,
        chindings,
        end,
        heads: {},
        chindingsBytes: Buffer.from(chindings, "utf8"),
        endBytes: Buffer.from(end, "utf8"),
        stream,
        writer: stream instanceof LogWriter ? stream : undefined,
      }
    : false;
  flatWriters.set(flat, w);
  return w;
}

/** A field's JSON text (censored when its name is redacted); undefined when absent, null when not a scalar. */
function flatValue(k: FlatKey, value: unknown): string | undefined | null {
  if (value === undefined) return undefined;
  if (k.redacted) return REDACTED_JSON;
  if (typeof value === "string") return flatString(value);
  if (typeof value === "number") return flatNumber(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  return null;
}

/**
 * Writes one line for a flat object of scalars (the access log, audit events) — the same line
 * pino writes for `flatLogger(log)[level](censorFlat(obj), msg)`, built directly: keys in the
 * object's order, `undefined` values left out, non-finite numbers as `null`, redacted field
 * names censored (see {@link censorFlat}). pino's general serialiser looks up serialisers and
 * stringifiers for every key of every line; these lines need none of that. Through the
 * {@link LogWriter} of {@link createLogger} the line is encoded straight into the writer's
 * buffer, with no string made for it ({@link encodeFlatLine}); to any other destination it is
 * written as one string. Values that are not scalars, and loggers configured beyond what
 * {@link createLogger} does, take pino's own path.
 * Strings are escaped by `JSON.stringify` (pino leaves a lone surrogate unescaped; here it
 * becomes a `\u` escape, so the line stays valid UTF-8). `at` (ms since the epoch) is the line's
 * time when it is not now (with createLogger's timestamps; another logger's say when it is written).
 */
export function writeFlat<T extends Record<string, FlatValue> = Record<string, FlatValue>>(
  log: Logger,
  level: FlatLevel,
  obj: T,
  msg?: string,
  at?: number,
  shape?: FlatShape<T>,
): void {
  const flat = flatLogger(log);
  if (!flat.isLevelEnabled(level)) return;
  const w = flatWriterOf(flat);
  if (w) {
    const num = flat.levels.values[level]!;
    const writer = w.writer;
    if (shape !== undefined && writer !== undefined && w.time === isoTimestamp && shape.prepare(obj, w, msg)) {
      shaped.shape = shape as FlatShape<never>;
      shaped.head = w.heads[num] ??= Buffer.from(w.prefix[num]!, "utf8");
      shaped.epochMs = Math.floor(at ?? Date.now());
      if (writer.encode(encodeShapedLine)) return;
    }
    // A line written after the fact says when it happened (`at`), where the time is pino's ISO one.
    const time = at !== undefined && w.time === isoTimestamp ? isoTimestampAt(at) : w.time();
    if (writer !== undefined) {
      line.head = (w.heads[num] ??= Buffer.from(w.prefix[num]!, "utf8"));
      line.time = time;
      line.chindings = w.chindingsBytes;
      line.obj = obj;
      line.msg = msg;
      line.end = w.endBytes;
      const taken = writer.encode(encodeFlatLine);
      line.obj = undefined;
      if (taken) return;
    }
    const props = flatProps(obj);
    if (props !== null) {
      w.stream.write(w.prefix[num]! + time + w.chindings + props + (msg === undefined ? "" : `,"msg":${flatString(msg)}`) + w.end);
      return;
    }
  }
  const censored: Record<string, FlatValue> = censorFlat(obj);
  if (msg === undefined) flat[level](censored);
  else flat[level](censored, msg);
}

/** A flat object's values in the order of its shape's keys. */
type Values = FlatValue[];

/** Times in a row a value must be met at its place before it is copied as bytes. */
const STEADY = 3;
/** Most times in a row a value is asked for after it changed while it was being copied. */
const STEADY_MAX = 48;
/** Ways kept per shape (see {@link FlatShape}). */
const SHAPE_WAYS = 8;

/**
 * One way of a {@link FlatShape}: the lines whose selecting fields had these values. It keeps the
 * last values met at each place of the line, and how the line is written while they stay: the
 * bytes of each run of steady fields (the key of the next changing field included), then that
 * field's value, encoded as it comes.
 */
class ShapeWay {
  /** The values of the selecting fields. */
  readonly select: Values;
  /** The values of the last line. */
  readonly last: Values;
  /** Per field: times in a row its value came again (0 after a change). */
  readonly met: Uint8Array;
  /** Per field: times in a row it must come to be steady (doubled each time a steady one changes). */
  readonly need: Uint8Array;
  /** Per field: whether the current plan copies it as bytes. */
  readonly steady: Uint8Array;
  /** The plan is to be made again before the next line. */
  stale = true;
  /** Bytes before each changing field (its key included), and after the last one. */
  runs: Uint8Array[] = [];
  /** The changing fields, in order. */
  fields: number[] = [];
  /** Length of each changing field's key (`,"key":`), taken back when its value is absent. */
  keyBytes: number[] = [];
  /** What the plan was made for: the writer's bindings and line end, and the message. */
  chindings = "";
  end = "";
  msg: string | undefined = undefined;
  /** When the way was last used (for replacing the oldest). */
  used = 0;

  constructor(n: number, select: Values) {
    this.select = select;
    this.last = new Array<FlatValue>(n).fill(undefined);
    this.met = new Uint8Array(n);
    this.need = new Uint8Array(n).fill(STEADY - 1);
    this.steady = new Uint8Array(n);
  }
}

/**
 * The fixed layout of one kind of flat object the gateway logs at a high rate (the request events
 * of the audit trail): its keys, always in this order, and a function that reads its values in
 * that order. Given to {@link writeFlat}, the line is written from a plan instead of field by
 * field: the fields whose values stayed the same for several lines in a row (route, upstream,
 * subject, method, transport, path, tool, outcome, status) are copied as the bytes of whole runs,
 * and only the fields that change (the request id, the latencies) are encoded. Lines are kept
 * apart by their first `selectBy` values (an audit event's kind and route): up to
 * {@link SHAPE_WAYS} such ways, each with its own values and plan; the oldest gives way. A
 * steady field whose value then changes is encoded again, and must be met twice as many times in
 * a row before it is copied again (up to {@link STEADY_MAX}), so values that change now and then
 * do not make the plan over and over. The line is the same as {@link writeFlat} writes without a
 * shape, byte for byte.
 */
export class FlatShape<T> {
  readonly keys: readonly string[];
  /** How each key is written (`,"key":`, and whether its value is censored), and its bytes' length. */
  private readonly flatKeys: FlatKey[];
  private readonly prefixBytes: number[];
  private readonly read: (obj: T, out: Values) => void;
  private readonly selectBy: number;
  private readonly ways: ShapeWay[] = [];
  private clock = 0;
  /** The values of the line being written, and its way. */
  readonly values: Values;
  way: ShapeWay | undefined;

  constructor(keys: readonly string[], read: (obj: T, out: Values) => void, selectBy = 1) {
    this.keys = keys;
    this.read = read;
    this.selectBy = Math.max(0, Math.min(selectBy, keys.length));
    this.flatKeys = keys.map(flatKey);
    this.prefixBytes = this.flatKeys.map((k) => Buffer.byteLength(k.prefix, "utf8"));
    this.values = new Array<FlatValue>(keys.length).fill(undefined);
  }

  /**
   * Reads `obj`, finds its way and brings the way's plan up to date for writer `w` and `msg`;
   * false when the line cannot be written from a plan (a value that is not a scalar).
   */
  prepare(obj: T, w: FlatWriter, msg: string | undefined): boolean {
    const values = this.values;
    this.read(obj, values);
    const way = this.wayOf(values);
    const { last, met, need, steady } = way;
    let stale = way.stale;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === last[i]) {
        if (met[i]! < need[i]!) {
          // Steady from now on: the next plan copies it.
          if (++met[i]! === need[i]!) stale = true;
        }
        continue;
      }
      if (steady[i] === 1) {
        // A copied value changed: encoded again, and trusted later than before.
        stale = true;
        need[i] = Math.min(need[i]! * 2, STEADY_MAX);
      }
      met[i] = 0;
      last[i] = v;
    }
    this.way = way;
    if (!stale && way.chindings === w.chindings && way.end === w.end && way.msg === msg) return true;
    return this.plan(way, w, msg);
  }

  private wayOf(values: Values): ShapeWay {
    const n = this.selectBy;
    const ways = this.ways;
    let found: ShapeWay | undefined;
    for (let i = 0; i < ways.length && found === undefined; i++) {
      const s = ways[i]!.select;
      let same = true;
      for (let k = 0; k < n && same; k++) same = s[k] === values[k];
      if (same) found = ways[i];
    }
    if (found === undefined) {
      found = new ShapeWay(values.length, values.slice(0, n));
      if (ways.length < SHAPE_WAYS) ways.push(found);
      else {
        let oldest = 0;
        for (let i = 1; i < ways.length; i++) if (ways[i]!.used < ways[oldest]!.used) oldest = i;
        ways[oldest] = found;
      }
    }
    found.used = ++this.clock;
    return found;
  }

  /** Makes the way's plan from its last values; false when one of them is not a scalar. */
  private plan(way: ShapeWay, w: FlatWriter, msg: string | undefined): boolean {
    const { last, met, need, steady } = way;
    const runs: Uint8Array[] = [];
    const fields: number[] = [];
    const keyBytes: number[] = [];
    let text = w.chindings;
    for (let i = 0; i < last.length; i++) {
      const v = last[i];
      const isSteady = met[i]! >= need[i]!;
      steady[i] = isSteady ? 1 : 0;
      const k = this.flatKeys[i]!;
      if (isSteady) {
        if (v === undefined) continue;
        const json = flatValue(k, v);
        if (json == null) {
          way.stale = true;
          return false;
        }
        text += k.prefix + json;
        continue;
      }
      text += k.prefix;
      runs.push(Buffer.from(text, "utf8"));
      fields.push(i);
      keyBytes.push(this.prefixBytes[i]!);
      text = "";
    }
    if (msg !== undefined) text += `,"msg":${flatString(msg)}`;
    runs.push(Buffer.from(text + w.end, "utf8"));
    way.runs = runs;
    way.fields = fields;
    way.keyBytes = keyBytes;
    way.chindings = w.chindings;
    way.end = w.end;
    way.msg = msg;
    way.stale = false;
    return true;
  }

  /** Encodes the prepared line's fields, bindings and end (see {@link encodeShapedLine}). */
  encode(buf: Buffer, at: number, limit: number): number {
    const way = this.way!;
    const { runs, fields, keyBytes } = way;
    const values = this.values;
    const flatKeys = this.flatKeys;
    for (let k = 0; k < fields.length; k++) {
      const run = runs[k]!;
      at = putBytes(buf, at, limit, run);
      if (at < 0) return at;
      const i = fields[k]!;
      const v = values[i];
      if (v === undefined) {
        at -= keyBytes[k]!;
        continue;
      }
      at = flatKeys[i]!.redacted ? putText(buf, at, limit, REDACTED_JSON) : putValue(buf, at, limit, v);
      if (at < 0) {
        // A value that is not a scalar: the line is written another way, and the plan made again.
        if (at === NOT_FLAT) way.stale = true;
        return at;
      }
    }
    return putBytes(buf, at, limit, runs[fields.length]!);
  }
}

/** The shaped line {@link encodeShapedLine} encodes next (encoding is synchronous). */
const shaped: { shape: FlatShape<never> | undefined; head: Uint8Array; epochMs: number } = { shape: undefined, head: EMPTY_BYTES, epochMs: 0 };

/** The level prefix and time of the second being written, as bytes (`{"level":30,"time":"…:15.`). */
let headTimeHead: Uint8Array = EMPTY_BYTES;
let headTimeSecond = -1;
let headTimeBytes: Uint8Array = EMPTY_BYTES;

/**
 * Encodes a line prepared by {@link FlatShape.prepare}: level prefix and time (the second's part
 * kept as bytes, the milliseconds written as digits), then the shape's runs and changing fields.
 */
function encodeShapedLine(buf: Buffer, at: number, limit: number): number {
  const { head, epochMs } = shaped;
  const ms = ((epochMs % 1000) + 1000) % 1000;
  const second = epochMs - ms;
  if (second !== headTimeSecond || head !== headTimeHead) {
    headTimeBytes = Buffer.concat([head, Buffer.from(timePrefixOf(second), "utf8")]);
    headTimeHead = head;
    headTimeSecond = second;
  }
  at = putBytes(buf, at, limit, headTimeBytes);
  if (at < 0 || at + 5 > limit) return NO_ROOM;
  const hundreds = Math.floor(ms / 100);
  const tens = Math.floor(ms / 10) - hundreds * 10;
  buf[at] = 0x30 + hundreds;
  buf[at + 1] = 0x30 + tens;
  buf[at + 2] = 0x30 + (ms % 10);
  buf[at + 3] = 0x5a; // Z
  buf[at + 4] = 0x22; // "
  return shaped.shape!.encode(buf, at + 5, limit);
}

/**
 * A field of a line as last met at one position of the lines written: its key and value and,
 * once the same key and value have come at that position three times in a row, the field's bytes
 * (`,"key":value`). The lines of a route repeat most of their fields (route, upstream, method,
 * transport, path, outcome, status), so most fields are then one copy of bytes, with no key
 * lookup and no character loop. Two ways per position: the audit trail's two kinds of line
 * share one field order and differ in a few values, and alternate.
 */
interface FieldSlot {
  key: string;
  value: FlatValue;
  /** Times met again since it took the slot. */
  hits: number;
  bytes: Uint8Array | undefined;
}
/** Positions of a line whose fields are remembered; later fields are always encoded. */
const FIELD_SLOTS = 48;
/** Longest field (bytes) kept in a slot. */
const FIELD_SLOT_BYTES = 160;
const newSlots = (): FieldSlot[] => Array.from({ length: FIELD_SLOTS }, () => ({ key: "", value: undefined, hits: 0, bytes: undefined }));
const slotsA = newSlots();
const slotsB = newSlots();
/** Per position: whether way B answered last (a miss then replaces way A). */
const lastB: boolean[] = new Array<boolean>(FIELD_SLOTS).fill(false);

/** The line {@link encodeFlatLine} encodes next (one at a time: encoding is synchronous). */
const line: {
  head: Uint8Array;
  time: string;
  chindings: Uint8Array;
  obj: Record<string, FlatValue> | undefined;
  msg: string | undefined;
  end: Uint8Array;
} = { head: EMPTY_BYTES, time: "", chindings: EMPTY_BYTES, obj: undefined, msg: undefined, end: EMPTY_BYTES };

/** Not enough room in the chunk (see {@link LogWriter.encode}). */
const NO_ROOM = -1;
/** A value that is not a scalar: pino writes the line. */
const NOT_FLAT = -2;

/**
 * Encodes {@link line} into `buf` from `at` as UTF-8: the same bytes {@link flatProps} and the
 * rest of {@link writeFlat} would make as a string. A field met at its position in the line
 * before is copied as bytes ({@link FieldSlot}); otherwise ASCII text is copied a character at a
 * time, with the JSON escaping check in the same pass, and a string that needs escaping or holds
 * anything beyond ASCII goes through {@link flatString} and Buffer's UTF-8 encoder.
 */
function encodeFlatLine(buf: Buffer, at: number, limit: number): number {
  const obj = line.obj!;
  at = putBytes(buf, at, limit, line.head);
  if (at >= 0) at = putText(buf, at, limit, line.time);
  if (at >= 0) at = putBytes(buf, at, limit, line.chindings);
  let pos = 0;
  for (const key in obj) {
    if (at < 0) return at;
    const value = obj[key];
    const p = pos++;
    if (value === undefined) continue;
    const slot = keptField(p, key, value);
    if (slot === undefined) {
      at = putField(buf, at, limit, key, value);
      if (at === NOT_FLAT) return at;
      keepField(p, key, value);
      continue;
    }
    // Met three times in a row at this position (a request's id comes twice, in its two
    // lines): from now on the field is its bytes.
    if (slot.bytes === undefined && ++slot.hits >= 2) slot.bytes = fieldBytes(key, value);
    const bytes = slot.bytes;
    at = bytes !== undefined && bytes.length > 0 ? putBytes(buf, at, limit, bytes) : putField(buf, at, limit, key, value);
  }
  if (at >= 0 && line.msg !== undefined) {
    at = putText(buf, at, limit, ',"msg":');
    if (at >= 0) at = putString(buf, at, limit, line.msg);
  }
  return at < 0 ? at : putBytes(buf, at, limit, line.end);
}

/** The slot holding this field at `pos` (the way that answered is marked); undefined if none does. */
function keptField(pos: number, key: string, value: FlatValue): FieldSlot | undefined {
  if (pos >= FIELD_SLOTS) return undefined;
  const a = slotsA[pos]!;
  if (a.key === key && a.value === value) {
    lastB[pos] = false;
    return a;
  }
  const b = slotsB[pos]!;
  if (b.key === key && b.value === value) {
    lastB[pos] = true;
    return b;
  }
  return undefined;
}

/** After a miss at `pos`: the way that did not answer last takes the field, with no bytes yet. */
function keepField(pos: number, key: string, value: FlatValue): void {
  if (pos >= FIELD_SLOTS) return;
  const b = lastB[pos]!;
  const slot = b ? slotsA[pos]! : slotsB[pos]!;
  lastB[pos] = !b;
  slot.key = key;
  slot.value = value;
  slot.hits = 0;
  slot.bytes = undefined;
}

/** One field (`,"key":value`) at `at`; -1 if it does not fit, -2 if the value is not a scalar. */
function putField(buf: Buffer, at: number, limit: number, key: string, value: FlatValue): number {
  const k = flatKey(key);
  at = putText(buf, at, limit, k.prefix);
  if (at < 0) return at;
  return k.redacted ? putText(buf, at, limit, REDACTED_JSON) : putValue(buf, at, limit, value);
}

/** A scalar value as JSON at `at`; -1 if it does not fit, -2 if it is not a scalar. */
function putValue(buf: Buffer, at: number, limit: number, value: FlatValue): number {
  if (typeof value === "string") return putString(buf, at, limit, value);
  if (typeof value === "number") return putNumber(buf, at, limit, value);
  if (typeof value === "boolean") return putText(buf, at, limit, value ? "true" : "false");
  return NOT_FLAT;
}

/** A field's bytes for its slot; empty when it is not a scalar or too long to keep. */
function fieldBytes(key: string, value: FlatValue): Uint8Array {
  const k = flatKey(key);
  const text = flatValue(k, value);
  if (text == null) return EMPTY_BYTES;
  const field = k.prefix + text;
  if (field.length > FIELD_SLOT_BYTES) return EMPTY_BYTES;
  const bytes = Buffer.from(field, "utf8");
  return bytes.length > FIELD_SLOT_BYTES ? EMPTY_BYTES : bytes;
}

/** Bytes at `at`; -1 if they do not fit. */
function putBytes(buf: Buffer, at: number, limit: number, bytes: Uint8Array): number {
  const n = bytes.length;
  if (at + n > limit) return NO_ROOM;
  buf.set(bytes, at);
  return at + n;
}

/** Text that is JSON as it is (the parts of a line around its values), at `at`; -1 if it does not fit. */
function putText(buf: Buffer, at: number, limit: number, s: string): number {
  const n = s.length;
  if (at + n > limit) return NO_ROOM;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return putUtf8(buf, at, limit, s);
    buf[at + i] = c;
  }
  return at + n;
}

/** A string as JSON (quoted, escaped as {@link flatString} does) at `at`; -1 if it does not fit. */
function putString(buf: Buffer, at: number, limit: number, s: string): number {
  const n = s.length;
  if (at + n + 2 > limit) return NO_ROOM;
  buf[at] = 0x22;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    // Control characters, `"`, `\` and anything beyond ASCII: the string encoder's way.
    if (c < 0x20 || c === 0x22 || c === 0x5c || c >= 0x80) return putUtf8(buf, at, limit, flatString(s));
    buf[at + 1 + i] = c;
  }
  buf[at + n + 1] = 0x22;
  return at + n + 2;
}

/**
 * A number as {@link flatNumber} writes it, at `at`; -1 if it does not fit. Integers and
 * hundredths (the latencies) are written digit by digit, with no string made for them.
 */
function putNumber(buf: Buffer, at: number, limit: number, n: number): number {
  if (Number.isInteger(n) && n > -1e15 && n < 1e15) {
    if (n >= 0) return putDigits(buf, at, limit, n);
    if (at + 1 > limit) return NO_ROOM;
    buf[at] = 0x2d; // -
    return putDigits(buf, at + 1, limit, -n);
  }
  const c = hundredthsOf(n);
  if (c !== undefined) {
    const int = Math.floor(c / 100);
    const frac = c - int * 100;
    at = putDigits(buf, at, limit, int);
    if (at < 0 || at + 3 > limit) return NO_ROOM;
    buf[at] = 0x2e; // .
    if (frac % 10 === 0) {
      buf[at + 1] = 0x30 + frac / 10;
      return at + 2;
    }
    buf[at + 1] = 0x30 + Math.floor(frac / 10);
    buf[at + 2] = 0x30 + (frac % 10);
    return at + 3;
  }
  return putText(buf, at, limit, flatNumber(n));
}

/** The decimal digits of a non-negative integer below 1e15. */
function putDigits(buf: Buffer, at: number, limit: number, v: number): number {
  let digits = 1;
  for (let p = 10; p <= v; p *= 10) digits++;
  if (at + digits > limit) return NO_ROOM;
  for (let i = at + digits - 1; i >= at; i--) {
    const q = Math.floor(v / 10);
    buf[i] = 0x30 + (v - q * 10);
    v = q;
  }
  return at + digits;
}

function putUtf8(buf: Buffer, at: number, limit: number, s: string): number {
  const n = Buffer.byteLength(s, "utf8");
  if (at + n > limit) return NO_ROOM;
  return at + buf.write(s, at, n, "utf8");
}

/** The JSON text of a flat object's fields (each with its leading comma); null when one is not a scalar. */
function flatProps(obj: Record<string, FlatValue>): string | null {
  let props = "";
  for (const key in obj) {
    const value = obj[key];
    if (value === undefined) continue;
    const k = flatKey(key);
    const text = flatValue(k, value);
    if (text === null) return null;
    props += k.prefix + text;
  }
  return props;
}

/** Writes the access log line of one request (`msg: "request"`, at `info`). */
export function logAccess(log: Logger, e: AccessEntry): void {
  if (!log.isLevelEnabled("info")) return;
  writeFlat(log, "info", { requestId: e.requestId, method: e.method, path: e.path, route: e.route, status: e.status, ms: +e.ms.toFixed(2) }, "request");
}

/** A logger that discards everything (unit tests). */
export const silentLogger: Logger = pino({ level: "silent" });
