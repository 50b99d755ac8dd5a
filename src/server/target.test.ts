import { test } from "node:test";
import assert from "node:assert/strict";
import { requestTarget } from "./target.js";

test("a plain path is handed on as the URL's pathname, equal to what the URL parser makes of it", () => {
  const targets = ["/", "/mcp", "/mcp/", "/a/b-c_d~e/F9", "/mcp.json", "/a/../b", "/a/./b", "/%2e%2e/x", "/a%20b", "/mcp?x=1", "/a//b", "/é", "/a#f", "/a;b", "/a:b", "/a@b"];
  let plain = 0;
  for (const t of targets) {
    const r = requestTarget("gw.example:8080", t);
    const parsed = new URL(r.url).pathname;
    if (r.path !== undefined) {
      plain++;
      assert.equal(r.path, parsed, t);
    }
  }
  assert.deepEqual(
    targets.filter((t) => requestTarget("gw.example:8080", t).path !== undefined),
    ["/", "/mcp", "/mcp/", "/a/b-c_d~e/F9"],
  );
  assert.equal(plain, 4);
});

test("no path without parsing under an authority the URL parser refuses (the gateway's own parse answers 400)", () => {
  const r = requestTarget("gw.example:99999", "/mcp");
  assert.equal(r.path, undefined);
  assert.throws(() => new URL(r.url));
  // An accepted authority after it still gets its path.
  assert.equal(requestTarget("gw.example:8080", "/mcp").path, "/mcp");
  // Absolute-form targets are parsed by the gateway.
  assert.equal(requestTarget(undefined, "http://gw.example/mcp").path, undefined);
});
