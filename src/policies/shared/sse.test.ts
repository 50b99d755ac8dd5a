import { test } from "node:test";
import assert from "node:assert/strict";
import { rewriteSse, sseEvent } from "./sse.js";

function streamOf(chunks: Array<string | Uint8Array>): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(typeof ch === "string" ? enc.encode(ch) : ch);
      c.close();
    },
  });
}

async function collect(s: ReadableStream<Uint8Array>): Promise<{ text: string; chunks: number }> {
  let text = "";
  let chunks = 0;
  const dec = new TextDecoder();
  for await (const c of s as unknown as AsyncIterable<Uint8Array>) {
    text += dec.decode(c, { stream: true });
    chunks++;
  }
  return { text, chunks };
}

test("rewrites matching events, keeps ids/event names, passes others through byte for byte", async () => {
  const input = [
    ": comment\n\n",
    "event: message\nid: 1\ndata: {\"a\":1}\n\n",
    "id: 2\r\ndata: {\"b\"\r\ndata: :2}\r\n\r\n",
    "data: untouched\n\n",
  ];
  const seen: string[] = [];
  const out = await collect(
    rewriteSse(streamOf(input), {
      onData: (d) => {
        seen.push(d);
        return d.includes('"b"') ? '{"b":3}' : undefined;
      },
      active: () => true,
    }),
  );
  assert.deepEqual(seen, ['{"a":1}', '{"b"\n:2}', "untouched"]);
  assert.equal(out.text, `: comment\n\nevent: message\nid: 1\ndata: {"a":1}\n\nid: 2\ndata: {"b":3}\n\ndata: untouched\n\n`);
});

test("events split across chunks (including a CR LF split) are reassembled", async () => {
  const text = 'data: {"x":1}\r\n\r\ndata: {"y":2}\n\n';
  const bytes = new TextEncoder().encode(text);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += 3) chunks.push(bytes.subarray(i, i + 3));
  const seen: string[] = [];
  const out = await collect(rewriteSse(streamOf(chunks), { onData: (d) => void seen.push(d) as undefined, active: () => true }));
  assert.deepEqual(seen, ['{"x":1}', '{"y":2}']);
  assert.equal(out.text, text);
});

test("multi-byte characters split across chunks survive", async () => {
  const bytes = new TextEncoder().encode('data: {"n":"héllo✓"}\n\n');
  const idx = bytes.indexOf(0xe2) + 1; // split inside the check mark
  const seen: string[] = [];
  await collect(rewriteSse(streamOf([bytes.subarray(0, idx), bytes.subarray(idx)]), { onData: (d) => void seen.push(d) as undefined, active: () => true }));
  assert.deepEqual(seen, ['{"n":"héllo✓"}']);
});

test("once inactive, the rest is copied without inspection; the prelude goes first", async () => {
  let remaining = 1;
  const seen: string[] = [];
  const out = await collect(
    rewriteSse(streamOf(["data: one\n\ndata: two\n\n", "data: three\n\n", "data: four\n\n"]), {
      onData: (d) => {
        seen.push(d);
        remaining--;
        return "ONE";
      },
      active: () => remaining > 0,
      prelude: sseEvent("first"),
    }),
  );
  assert.deepEqual(seen, ["one"]);
  assert.equal(out.text, "data: first\n\ndata: ONE\n\ndata: two\n\ndata: three\n\ndata: four\n\n");
});

test("an unterminated final event is passed on unchanged", async () => {
  const out = await collect(rewriteSse(streamOf(["data: a\n\n", "data: partial"]), { onData: () => "X", active: () => true }));
  assert.equal(out.text, "data: X\n\ndata: partial");
});
