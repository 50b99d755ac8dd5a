import { test } from "node:test";
import assert from "node:assert/strict";
import { GatewayRequest } from "../../pipeline/types.js";
import { appendSearch, checkPatternSyntax, compileRewritePattern, searchOf } from "./target.js";

const req = (url: string, params: Record<string, string> = {}, query: Record<string, string> = {}) =>
  new GatewayRequest(url, { params, query });

test("a literal pattern is static", () => {
  const t = compileRewritePattern("https://mcp.example.com/mcp", {});
  assert.equal(t.staticUrl, "https://mcp.example.com/mcp");
  assert.equal(t.build(req("http://gw/x")), "https://mcp.example.com/mcp");
});

test("${env.X} is resolved at build time and stays static", () => {
  const t = compileRewritePattern("${env.UP}/mcp?key=${env.KEY}", { UP: "https://u.example", KEY: "k1" });
  assert.equal(t.staticUrl, "https://u.example/mcp?key=k1");
});

test("an unset ${env.X} fails at build time without revealing other values", () => {
  assert.throws(() => compileRewritePattern("https://u.example/${env.MISSING}", { OTHER: "secret" }), (err: Error) => {
    assert.match(err.message, /MISSING is not set/);
    assert.doesNotMatch(err.message, /secret/);
    return true;
  });
});

test("params, query and url parts are filled per request, encoded", () => {
  const t = compileRewritePattern("https://u.example/${params.tenant}/mcp${url.search}", {});
  assert.equal(t.staticUrl, undefined);
  assert.equal(t.placesSearch, true);
  assert.equal(t.build(req("http://gw/t/a%20b?x=1", { tenant: "a b/c" })), "https://u.example/a%20b%2Fc/mcp?x=1");
  const q = compileRewritePattern("https://u.example/${query.region}", {});
  assert.equal(q.build(req("http://gw/?region=eu", {}, { region: "eu" })), "https://u.example/eu");
});

test("bad patterns are rejected", () => {
  assert.match(checkPatternSyntax("https://x/${headers.a}") ?? "", /unsupported placeholder/);
  assert.match(checkPatternSyntax("https://x/${oops") ?? "", /malformed/);
  assert.equal(checkPatternSyntax("https://x/${params.a}"), undefined);
  assert.throws(() => compileRewritePattern("ftp://x/mcp", {}), /http\(s\)/);
  assert.throws(() => compileRewritePattern("/relative", {}), /absolute URL/);
});

test("query strings are taken and appended without URL parsing", () => {
  assert.equal(searchOf("http://gw/mcp?a=1&b=2"), "?a=1&b=2");
  assert.equal(searchOf("http://gw/mcp?"), "");
  assert.equal(searchOf("http://gw/mcp"), "");
  assert.equal(appendSearch("https://u/mcp", "?a=1"), "https://u/mcp?a=1");
  assert.equal(appendSearch("https://u/mcp?k=v", "?a=1"), "https://u/mcp?k=v&a=1");
  assert.equal(appendSearch("https://u/mcp", ""), "https://u/mcp");
});
