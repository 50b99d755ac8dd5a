/**
 * Node defines `Buffer`, `performance` and `crypto` on the global object as getters, and they
 * stay getters after first use: every mention of one in a function is a global load that calls
 * the getter, which optimised code does not fold away (about 5–8 ns each, measured on Node 20 and
 * 24; `perf` showed `LoadGlobalIC` at up to 0.9 µs per proxied request from the gateway's own
 * functions). The modules a proxied request runs through import them from their `node:`
 * modules instead, a module binding that costs nothing to read. This checks that they still do.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

const SRC = path.dirname(new URL(import.meta.url).pathname);
/** The modules on the path of a proxied request (edge, pipeline, proxy handler, audit, log). */
const HOT = [
  "gateway.ts",
  "log.ts",
  "log-writer.ts",
  "server/body.ts",
  "server/node.ts",
  "mcp/messages.ts",
  "audit/observation.ts",
  "audit/rpc-tap.ts",
  "audit/store-timing.ts",
  "audit/metrics.ts",
  "handlers/mcp-proxy/handler.ts",
  "handlers/mcp-proxy/headers.ts",
  "handlers/mcp-proxy/session.ts",
  "handlers/mcp-proxy/upstream.ts",
  "pipeline/header-map.ts",
  "pipeline/types.ts",
  "pipeline/node-body.ts",
  "policies/open-id-jwt-auth-inbound/index.ts",
];
const GLOBALS: Record<string, string> = { Buffer: "node:buffer", performance: "node:perf_hooks", crypto: "node:crypto" };

test("the getters are still getters (else this check is moot)", () => {
  for (const name of Object.keys(GLOBALS)) {
    assert.equal(typeof Object.getOwnPropertyDescriptor(globalThis, name)?.get, "function", `globalThis.${name} is an accessor`);
  }
});

test("hot-path modules read Buffer, performance and crypto as imports, not through the global object", () => {
  const found: string[] = [];
  for (const rel of HOT) {
    const text = fs.readFileSync(path.join(SRC, rel), "utf8");
    // Code only: comments may name them freely.
    const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
    for (const [name, from] of Object.entries(GLOBALS)) {
      if (!new RegExp(`(^|[^.\\w$])${name}\\.`, "m").test(code)) continue;
      const imported = new RegExp(`import\\s*\\{[^}]*\\b${name}\\b[^}]*\\}\\s*from\\s*"${from}"|import\\s+(\\*\\s+as\\s+)?${name}\\s+from\\s*"${from}"`).test(code);
      if (!imported) found.push(`${rel}: ${name}`);
    }
  }
  assert.deepEqual(found, [], "import these from their node: module");
});
