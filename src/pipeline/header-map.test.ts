import { test } from "node:test";
import assert from "node:assert/strict";
import { HeaderMap } from "./header-map.js";

/** The same operations on a web Headers and on a HeaderMap must read back the same. */
function bothWays(ops: (h: Headers) => void): { web: Headers; ours: HeaderMap } {
  const web = new Headers();
  const ours = new HeaderMap();
  ops(web);
  ops(ours);
  return { web, ours };
}

test("reads, iteration order, repeated fields and Set-Cookie behave like web Headers", () => {
  const { web, ours } = bothWays((h) => {
    h.append("X-B", "2");
    h.append("x-a", "1");
    h.append("X-A", "one more");
    h.append("Set-Cookie", "a=1");
    h.append("set-cookie", "b=2");
    h.append("Accept", "  text/plain\t");
    h.set("x-c", "3");
    h.delete("X-B");
  });
  assert.deepEqual([...ours], [...web]);
  assert.deepEqual([...ours.keys()], [...web.keys()]);
  assert.deepEqual([...ours.values()], [...web.values()]);
  for (const name of ["x-a", "X-A", "set-cookie", "accept", "x-b", "missing"]) {
    assert.equal(ours.get(name), web.get(name), name);
    assert.equal(ours.has(name), web.has(name), name);
  }
  assert.deepEqual(ours.getSetCookie(), web.getSetCookie());
  const seen: string[] = [];
  ours.forEach((v, k, parent) => {
    assert.equal(parent, ours);
    seen.push(`${k}=${v}`);
  });
  const expected: string[] = [];
  web.forEach((v, k) => expected.push(`${k}=${v}`));
  assert.deepEqual(seen, expected);
});

test("is a Headers wherever one is accepted", () => {
  const h = HeaderMap.fromRawHeaders(["Content-Type", "application/json", "X-Trace", "1", "x-trace", "2"]);
  assert.ok(h instanceof Headers);
  assert.equal(new Headers(h).get("x-trace"), "1, 2");
  assert.equal(new Request("http://example.test/", { headers: h }).headers.get("content-type"), "application/json");
  assert.equal(new Response(null, { headers: h }).headers.get("x-trace"), "1, 2");
  assert.deepEqual(Object.fromEntries(h), { "content-type": "application/json", "x-trace": "1, 2" });
  assert.deepEqual(new HeaderMap({ A: "1" }).get("a"), "1");
  assert.deepEqual(new HeaderMap([["A", "1"]]).get("a"), "1");
});

test("what callers add is validated like web Headers", () => {
  const h = new HeaderMap();
  assert.throws(() => h.set("bad name", "x"), TypeError);
  assert.throws(() => h.append("x-a", "line\r\nbreak"), TypeError);
  assert.throws(() => h.set("x-a", "nul\0"), TypeError);
  assert.throws(() => h.set("x-a", "wide \u0100"), TypeError);
  assert.throws(() => h.get("bad name"), TypeError);
  assert.throws(() => new HeaderMap([["only-name"]] as never), TypeError);
  assert.equal([...h].length, 0, "nothing was added by the failed calls");
  // Leading and trailing whitespace is stripped as web Headers strip it, inner whitespace kept.
  for (const v of [" a b", "a b\t", "\r\n a b \n", "a b"]) {
    h.set("x-v", v);
    assert.equal(h.get("x-v"), new Headers([["x-v", v]]).get("x-v"));
    assert.equal(h.get("x-v"), "a b");
  }
});

test("fields from another parser: taken as they are, cookies as a list", () => {
  const h = HeaderMap.fromParsed([["x-a", "tab\tand latin-1 \u00e9"], ["set-cookie", "a=1"], ["set-cookie", "b=2"]]);
  assert.deepEqual(h.toNodeHeaders(), { "x-a": "tab\tand latin-1 \u00e9", "set-cookie": ["a=1", "b=2"] });
  assert.deepEqual([...h.fields()], [["x-a", "tab\tand latin-1 \u00e9"], ["set-cookie", "a=1"], ["set-cookie", "b=2"]]);
});

test("fields taken whole combine repeated names and keep cookies apart, whatever comes first", () => {
  const raw = ["X-A", "1", "Cookie", "c=1", "Set-Cookie", "s=1", "x-a", "2", "X-B", "3"];
  for (let n = 2; n <= raw.length; n += 2) {
    const part = raw.slice(0, n);
    const h = HeaderMap.fromRawHeaders(part);
    const pairs = Array.from({ length: n / 2 }, (_, i) => [part[2 * i]!, part[2 * i + 1]!] as [string, string]);
    const web = new Headers(pairs);
    assert.deepEqual([...h], [...web], `fromRawHeaders of ${n / 2} fields`);
    assert.deepEqual(h.getSetCookie(), web.getSetCookie());
    const parsed = HeaderMap.fromParsed(pairs.map(([k, v]) => [k.toLowerCase(), v] as [string, string]));
    assert.deepEqual([...parsed], [...web], `fromParsed of ${n / 2} fields`);
    assert.deepEqual(parsed.getSetCookie(), web.getSetCookie());
  }
  assert.equal(HeaderMap.fromParsed([["x-a", "1"], ["x-b", "2"], ["x-a", "3"]]).get("x-a"), "1, 3");
  assert.equal(HeaderMap.fromRawHeaders(["x-a", "1", "X-B", "2", "X-A", "3"]).get("x-a"), "1, 3");
});

test("common names in any spelling are read as web Headers reads them, repeated ones combined", () => {
  const spellings = ["Content-Type", "content-type", "CONTENT-TYPE", "Content-type", "MCP-Session-Id", "Mcp-Session-Id", "mcp-session-id", "MCP-PROTOCOL-VERSION", "Last-Event-ID", "X-Forwarded-For", "x-FORWARDED-for", "TE", "Te", "Host"];
  const raw = spellings.flatMap((name, i) => [name, `v${i}`]);
  const h = HeaderMap.fromRawHeaders(raw);
  const web = new Headers(spellings.map((name, i) => [name, `v${i}`] as [string, string]));
  assert.deepEqual([...h], [...web]);
  assert.equal(h.get("content-type"), "v0, v1, v2, v3");
  assert.deepEqual(h.fields().map(([name]) => name), ["content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id", "x-forwarded-for", "te", "host"]);
});

test("any series of changes reads as web Headers would, with few fields and with many", () => {
  let x = 7;
  const random = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (const names of [4, 60]) {
    const pool = Array.from({ length: names }, (_, i) => (i === 0 ? "Set-Cookie" : `X-Field-${i}`));
    const raw: string[] = [];
    for (let i = 0; i < names; i++) raw.push(pool[Math.floor(random() * names)]!, `v${i}`);
    const h = HeaderMap.fromRawHeaders(raw);
    const web = new Headers();
    for (let i = 0; i < raw.length; i += 2) web.append(raw[i]!, raw[i + 1]!);
    for (let step = 0; step < 400; step++) {
      const name = pool[Math.floor(random() * names)]!;
      const spelled = random() < 0.5 ? name.toLowerCase() : name;
      const op = random();
      if (op < 0.3) {
        h.append(spelled, `a${step}`);
        web.append(spelled, `a${step}`);
      } else if (op < 0.55) {
        h.set(spelled, `s${step}`);
        web.set(spelled, `s${step}`);
      } else if (op < 0.7) {
        h.delete(spelled);
        web.delete(spelled);
      }
      assert.equal(h.get(spelled), web.get(spelled), `get ${spelled} at step ${step}`);
      assert.equal(h.has(spelled), web.has(spelled), `has ${spelled} at step ${step}`);
      if (step % 20 === 0) {
        assert.deepEqual([...h], [...web], `fields at step ${step}`);
        const node = h.toNodeHeaders();
        assert.equal(h.fieldCount, Object.keys(node).length - (node["set-cookie"] ? 1 : 0));
        for (let i = 0; i < h.fieldCount; i++) assert.equal(h.valueAt(i), web.get(h.nameAt(i)), `field ${i} at step ${step}`);
      }
    }
  }
});

test("changes after a read are seen by the next iteration", () => {
  const h = HeaderMap.fromRawHeaders(["B", "2", "A", "1"]);
  assert.deepEqual([...h.keys()], ["a", "b"]);
  h.set("c", "3");
  h.delete("a");
  assert.deepEqual([...h], [["b", "2"], ["c", "3"]]);
});
