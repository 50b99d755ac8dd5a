import { test } from "node:test";
import assert from "node:assert/strict";
import { globMatcher } from "./glob.js";
import { readCredential } from "./credentials.js";
import { TtlLru } from "./lru.js";
import { bearerChallenge, resourceMetadataUrl } from "./protected-resource.js";

test("globMatcher: literals, *, regex characters are literal, empty list matches nothing", () => {
  const m = globMatcher(["exact", "get_*", "*.md", "a+b(c)"]);
  assert.ok(m("exact") && m("get_") && m("get_user") && m("docs/x.md") && m("a+b(c)"));
  assert.ok(!m("Exact") && !m("xget_user") && !m("x.mdx") && !m("aab(c)"));
  assert.equal(globMatcher([])("anything"), false);
  assert.ok(globMatcher(["*"])(""));
});

test("readCredential: scheme match is case-insensitive; other schemes and blanks are absent", () => {
  const h = (v: string) => new Headers({ authorization: v });
  assert.equal(readCredential(h("Bearer abc"), "authorization", "Bearer"), "abc");
  assert.equal(readCredential(h("bearer   abc "), "Authorization", "Bearer"), "abc");
  assert.equal(readCredential(h("Basic abc"), "authorization", "Bearer"), undefined);
  assert.equal(readCredential(h("Bearer "), "authorization", "Bearer"), undefined);
  assert.equal(readCredential(h("Bearerabc"), "authorization", "Bearer"), undefined);
  assert.equal(readCredential(new Headers({ "x-api-key": " k " }), "x-api-key", ""), "k");
  assert.equal(readCredential(new Headers(), "authorization", "Bearer"), undefined);
});

test("TtlLru: expiry and least-recently-used eviction", () => {
  const c = new TtlLru<number>(2);
  c.set("a", 1, 100);
  c.set("b", 2, 100);
  assert.equal(c.get("a", 50), 1); // a is now most recent
  c.set("c", 3, 100);
  assert.equal(c.get("b", 50), undefined, "b was least recently used");
  assert.equal(c.get("a", 50), 1);
  assert.equal(c.get("a", 100), undefined, "expired at its deadline");
  assert.equal(c.size, 1);
});

test("TtlLru: an entry hit between insertions is never evicted; one not hit goes in insertion order", () => {
  for (const max of [1, 2, 3, 4, 7, 100]) {
    const c = new TtlLru<number>(max);
    c.set("hot", 0, 1e9);
    for (let i = 0; i < 5 * max + 10; i++) {
      c.set(`k${i}`, i, 1e9);
      assert.equal(c.get("hot", 1), max === 1 ? undefined : 0, `max ${max}, after insertion ${i}`);
      if (max === 1) c.set("hot", 0, 1e9);
      assert.ok(c.size <= max);
    }
    // Never hit: the oldest go first.
    for (let i = 0; i < max; i++) c.set(`n${i}`, i, 1e9);
    c.set("last", 0, 1e9);
    assert.equal(c.get("n0", 1), undefined, `max ${max}: the oldest was evicted`);
    if (max > 1) assert.equal(c.get(`n${max - 1}`, 1), max - 1);
  }
});

test("bearer challenges and metadata URLs", () => {
  assert.equal(bearerChallenge({}), "Bearer");
  assert.equal(
    bearerChallenge({ error: "invalid_token", scope: "a b", resourceMetadata: "https://gw/.well-known/oauth-protected-resource/mcp" }),
    'Bearer error="invalid_token", scope="a b", resource_metadata="https://gw/.well-known/oauth-protected-resource/mcp"',
  );
  assert.equal(resourceMetadataUrl("https://gw", "/mcp/x"), "https://gw/.well-known/oauth-protected-resource/mcp/x");
  assert.equal(resourceMetadataUrl("https://gw", "/"), "https://gw/.well-known/oauth-protected-resource");
});
