import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { scanRequest } from "./scan.js";
import type { JsonRpcMessage } from "./messages.js";

/**
 * What the scan must give for a body, from `JSON.parse` (of the body decoded as the full parser
 * path decodes it): the message's `jsonrpc`, `id`, `method` and string `params.name` / `params.uri`;
 * undefined when the body is not a JSON object.
 */
function expected(body: Buffer): JsonRpcMessage | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body.toString());
  } catch {
    return undefined;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined;
  const j = json as Record<string, unknown>;
  const m: JsonRpcMessage = {};
  if ("jsonrpc" in j) m.jsonrpc = j.jsonrpc as string;
  if ("id" in j) m.id = j.id as never;
  if ("method" in j) m.method = j.method as string;
  if ("params" in j) {
    const p = j.params as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    if (typeof p.name === "string") out.name = p.name;
    if (typeof p.uri === "string") out.uri = p.uri;
    m.params = out;
  }
  return m;
}

/** The scan's answer, checked against the full parse whenever it gives one. */
function agree(body: Buffer | string, why = ""): JsonRpcMessage | undefined {
  const b = typeof body === "string" ? Buffer.from(body) : body;
  const got = scanRequest(b);
  if (got !== undefined) {
    const want = expected(b);
    assert.notEqual(want, undefined, `scan answered for a body JSON.parse refuses ${why}: ${JSON.stringify(b.toString())}`);
    assert.deepEqual(got, want, `scan and JSON.parse differ ${why}: ${JSON.stringify(b.toString())}`);
  }
  return got;
}

test("scanRequest reads a plain tools/call as JSON.parse does", () => {
  const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}';
  assert.deepEqual(agree(body), { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo" } });
  // Whitespace anywhere JSON allows it, keys in another order, a string id, a resource's uri.
  assert.deepEqual(
    agree(' \r\n{ "params" :\t{ "uri" : "file:///a b.txt" , "x":[1 ,2, {"y":null}] } ,\n"method":"resources/read", "id" : "req-7", "jsonrpc":"2.0" }\n'),
    { jsonrpc: "2.0", id: "req-7", method: "resources/read", params: { uri: "file:///a b.txt" } },
  );
  // A notification (no id), a null id, an empty object, empty params.
  assert.deepEqual(agree('{"jsonrpc":"2.0","method":"notifications/initialized"}'), { jsonrpc: "2.0", method: "notifications/initialized" });
  assert.deepEqual(agree('{"jsonrpc":"2.0","id":null,"method":"ping"}'), { jsonrpc: "2.0", id: null, method: "ping" });
  assert.deepEqual(agree("{}"), {});
  assert.deepEqual(agree('{"method":"tools/list","params":{}}'), { method: "tools/list", params: {} });
  // Escapes, numbers of every form and non-ASCII text in what is skipped.
  assert.deepEqual(
    agree('{"id":-0,"method":"tools/call","params":{"name":"ünï","arguments":{"q":"a\\"b\\\\c\\u00e9\\n","n":[-1.5e+10,0,0.25,1E3],"t":true,"f":false}}}'),
    { id: -0, method: "tools/call", params: { name: "ünï" } },
  );
});

test("scanRequest shares the usual method names and leaves the rest to the full parser", () => {
  const a = scanRequest(Buffer.from('{"method":"tools/call"}'))!;
  const b = scanRequest(Buffer.from('{"method":"tools/call"}'))!;
  assert.equal(a.method, "tools/call");
  assert.ok(Object.is(a.method, b.method));
  const refused = [
    "[]",
    '[{"method":"ping"}]',
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}',
    '{"id":1,"method":"tools/call","params":{"name":"a","_meta":{"progressToken":1}}}',
    '{"id":1,"result":{}}',
    '{"id":1,"error":{"code":-1}}',
    '{"id":1,"method":"ping","extra":true}',
    '{"id":1,"id":2,"method":"ping"}',
    '{"method":"a","method":"b"}',
    '{"params":{"name":"a","name":"b"}}',
    '{"params":[1,2]}',
    '{"params":null}',
    '{"id":1.0,"method":"ping"}',
    '{"id":1e2,"method":"ping"}',
    '{"id":1234567890123456,"method":"ping"}',
    '{"id":true,"method":"ping"}',
    '{"id":{"a":1},"method":"ping"}',
    '{"method":"tools\\/call"}',
    '{"me\\u0074hod":"ping"}',
    '{"params":{"name":"a\\"b"}}',
    "\ufeff{}",
    '{"id":1,"method":"ping"} x',
    '{"id":1,"method":"ping"}{}',
    '{"id":01,"method":"ping"}',
    '{"id":1,"method":"ping",}',
    '{"params":{"arguments":{"a":1,}}}',
    '{"params":{"arguments":"tab\there"}}',
    '{"params":{"arguments":"\\x"}}',
    '{"params":{"arguments":"\\u12"}}',
    '{"params":{"arguments":[tru]}}',
    '{"params":{"arguments":-}}',
    '{"params":{"arguments":1.}}',
    '{"params":{"arguments":1e}}',
    '{"params":{"arguments":.5}}',
    '{"id":1',
    '{"id":1,',
    '{"params":{"arguments":"open',
    "",
    "   ",
    "null",
    '"text"',
    `{"params":{"arguments":${"[".repeat(80)}${"]".repeat(80)}}}`,
  ];
  for (const body of refused) assert.equal(agree(body, "(listed)"), undefined, `answered for ${JSON.stringify(body)}`);
  // Nesting within the bound is skipped and checked.
  assert.deepEqual(agree(`{"method":"ping","params":{"a":${"[".repeat(40)}${"]".repeat(40)}}}`), { method: "ping", params: {} });
});

/** A small seeded generator, so a failure can be run again (the seed is in the message). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TEXTS = ["", "a", "echo", "tools/call", 'q"uote', "back\\slash", "line\nbreak", "tab\t", "ünïcødé", "😀 emoji", "\u2028", "\u0001ctl", "/slash", "{[,:]}"];
const NUMBERS = [0, -0, 1, -1, 42, 1e21, 1.5, -2.25e-7, 123456789012345, 2 ** 53, 0.1];
const METHODS = ["tools/call", "tools/list", "resources/read", "prompts/get", "ping", "custom/thing", "ünï/method"];

function value(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 3 ? 4 : 7));
  if (k === 0) return TEXTS[Math.floor(r() * TEXTS.length)];
  if (k === 1) return NUMBERS[Math.floor(r() * NUMBERS.length)];
  if (k === 2) return [true, false, null][Math.floor(r() * 3)];
  if (k === 3) return TEXTS[Math.floor(r() * TEXTS.length)]! + String(Math.floor(r() * 1000));
  if (k === 4 || k === 5) {
    const o: Record<string, unknown> = {};
    const n = Math.floor(r() * 4);
    for (let i = 0; i < n; i++) o[TEXTS[Math.floor(r() * TEXTS.length)]! + i] = value(r, depth + 1);
    return o;
  }
  return Array.from({ length: Math.floor(r() * 4) }, () => value(r, depth + 1));
}

/** JSON text of `v` with random JSON whitespace between tokens. */
function spaced(v: unknown, r: () => number): string {
  const w = () => [" ", "", "", "\n", "\t", "\r\n  "][Math.floor(r() * 6)]!;
  if (Array.isArray(v)) return `[${w()}${v.map((x) => spaced(x, r)).join(`${w()},${w()}`)}${w()}]`;
  if (typeof v === "object" && v !== null) {
    return `{${w()}${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}${w()}:${w()}${spaced(x, r)}`)
      .join(`${w()},${w()}`)}${w()}}`;
  }
  return JSON.stringify(v);
}

/** A single request of the usual form, keys in a random order, arguments of any JSON. */
function plainRequest(r: () => number): string {
  const entries: Array<[string, unknown]> = [["jsonrpc", "2.0"]];
  const idKind = r();
  if (idKind < 0.5) entries.push(["id", Math.floor(r() * 1e6) * (r() < 0.1 ? -1 : 1)]);
  else if (idKind < 0.85) entries.push(["id", `id-${Math.floor(r() * 1e6)}`]);
  else if (idKind < 0.9) entries.push(["id", null]);
  entries.push(["method", METHODS[Math.floor(r() * METHODS.length)]]);
  if (r() < 0.9) {
    const params: Array<[string, unknown]> = [];
    if (r() < 0.7) params.push(["name", ["echo", "search", "ünï", "with space"][Math.floor(r() * 4)]]);
    if (r() < 0.3) params.push(["uri", "file:///x/y.txt"]);
    if (r() < 0.8) params.push(["arguments", value(r, 1)]);
    if (r() < 0.3) params.push(["cursor", value(r, 2)]);
    params.sort(() => r() - 0.5);
    entries.push(["params", Object.fromEntries(params)]);
  }
  entries.sort(() => r() - 0.5);
  return spaced(Object.fromEntries(entries), r);
}

test("scanRequest answers for generated plain requests, as JSON.parse reads them", () => {
  const seed = Date.now() % 100000;
  const r = rng(seed);
  for (let n = 0; n < 3000; n++) {
    const body = plainRequest(r);
    const got = agree(body, `(seed ${seed})`);
    // Strings with escapes or control characters in the kept fields are left to the full parser;
    // these generated ones have none, so the scan must answer.
    assert.notEqual(got, undefined, `seed ${seed}: no answer for ${JSON.stringify(body)}`);
  }
});

test("scanRequest never answers differently from JSON.parse on damaged bodies", () => {
  const seed = Date.now() % 100000;
  const r = rng(seed);
  const noise = Buffer.from('{}[]":,\\ \t\n0123456789.-+eEtrufalsn\u00e9\u0001x');
  let answered = 0;
  for (let n = 0; n < 20000; n++) {
    const b = Buffer.from(plainRequest(r));
    const edits = 1 + Math.floor(r() * 3);
    let body = b;
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(r() * (body.length + 1));
      const kind = Math.floor(r() * 4);
      const byte = Buffer.from([noise[Math.floor(r() * noise.length)]!]);
      if (kind === 0) body = Buffer.concat([body.subarray(0, at), byte, body.subarray(at)]);
      else if (kind === 1) body = Buffer.concat([body.subarray(0, at), body.subarray(at + 1)]);
      else if (kind === 2 && at < body.length) body = Buffer.concat([body.subarray(0, at), byte, body.subarray(at + 1)]);
      else body = body.subarray(0, at);
    }
    if (agree(body, `(seed ${seed})`) !== undefined) answered++;
  }
  // Many damaged bodies are still valid JSON (an edit inside a skipped string): the scan must have
  // answered for some, or this test would check nothing.
  assert.ok(answered > 1000, `only ${answered} damaged bodies were answered`);
});
