/**
 * The TypeScript loader keeps function names: a function bound to a name (`const done = () => …`,
 * a nested `function f() {}`) gets its name through `Object.defineProperty` each time it is
 * created. In a function a request runs through, that is one runtime call and a new hidden class
 * for the closure per request — it cost about 1.5 µs per proxied `tools/call` on Node 24 where
 * one such closure sat in the upstream send. This checks that a proxied call, with and without
 * policies, names no function while it runs.
 *
 * The count is taken by replacing `Object.defineProperty` before any of the gateway's modules is
 * loaded: the loader's naming helper captures it as each module is evaluated.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

/** The gateway's own modules (the test's client, Node's fetch, names functions its own way). */
const SRC = new URL("../../src/", import.meta.url).pathname;
const named: string[] = [];
let counting = false;
const define = Object.defineProperty;
Object.defineProperty = function (target: unknown, key: PropertyKey, desc: PropertyDescriptor & ThisType<unknown>) {
  if (counting && key === "name") {
    counting = false;
    // [0] "Error", [1] this function, [2] the naming helper, [3] where the function was made.
    const where = new Error().stack?.split("\n")[3]?.trim() ?? "";
    if (where.includes(SRC)) named.push(`${String(desc.value)} ${where}`);
    counting = true;
  }
  return define(target, key, desc);
} as typeof Object.defineProperty;

const { startGateway, logsWhen } = await import("../helpers/harness.js");
const { startMcpTestServer } = await import("../fixtures/mcp-servers.js");
const { makeKey, sign, startJwksServer } = await import("../helpers/jwks-fixture.js");
const { MCP_POST_HEADERS, proxyProject, rpc } = await import("./mcp-proxy-helpers.js");
const { endsEmpty } = await import("../../src/handlers/mcp-proxy/upstream.js");
const { PassThrough } = await import("node:stream");

const ISSUER = "https://idp.test/";
const AUDIENCE = "tollgate-test";
const CALLS = 20;

let upstream: Awaited<ReturnType<typeof startMcpTestServer>>;
let jwks: Awaited<ReturnType<typeof startJwksServer>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let token: string;

before(async () => {
  upstream = await startMcpTestServer({ mode: "stateless" });
  const key = await makeKey("k1", "RS256");
  jwks = await startJwksServer([key]);
  token = await sign(key, { iss: ISSUER, aud: AUDIENCE, sub: "alice" });
  const runtime = (exportName: string, options: Record<string, unknown>) => ({ module: "$import(@zuplo/runtime)", export: exportName, options });
  const dir = await proxyProject(
    [
      { path: "/jwt", options: { rewritePattern: upstream.url }, inbound: ["jwt", "headers"] },
      { path: "/open", options: { rewritePattern: upstream.url } },
    ],
    [
      { name: "jwt", policyType: "open-id-jwt-auth-inbound", handler: runtime("OpenIdJwtInboundPolicy", { issuer: ISSUER, audience: AUDIENCE, jwkUrl: jwks.url }) },
      { name: "headers", policyType: "set-headers-inbound", handler: runtime("SetHeadersInboundPolicy", { headers: [{ name: "x-team", value: "core" }] }) },
    ],
  );
  // `info`, as users run it: the access line and the audit events are written.
  gw = await startGateway({ projectDir: dir, env: { TOLLGATE_LOG_LEVEL: "info" } });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  await jwks?.close();
});

async function calls(path: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${gw.url}${path}`, {
      method: "POST",
      headers: { ...MCP_POST_HEADERS, "mcp-protocol-version": "2025-11-25", authorization: `Bearer ${token}` },
      body: rpc("tools/call", { name: "echo", arguments: { text: "hi" } }, i + 1),
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.match(await res.text(), /"result"/);
  }
}

test("the count sees the loader naming a function (else the checks below are moot)", async () => {
  // `endsEmpty` (a 202's body) binds its listeners to names on every call.
  named.length = 0;
  counting = true;
  try {
    const body = new PassThrough();
    const empty = endsEmpty(body, { aborted: false });
    body.end();
    assert.equal(await empty, true);
  } finally {
    counting = false;
  }
  assert.ok(named.some((n) => n.startsWith("settle ")), `named: ${JSON.stringify(named)}`);
});

for (const path of ["/jwt", "/open"]) {
  test(`a proxied tools/call on ${path} names no function while it runs`, async () => {
    await calls(path, 3); // first calls: lazy set-up (JWKS, caches) may name functions once
    const from = gw.logs.length;
    named.length = 0;
    counting = true;
    try {
      await calls(path, CALLS);
      // The audit events are written after the answers: wait for all of them.
      await logsWhen(gw, from, (lines) => lines.filter((l) => l.event === "mcp_request_accepted").length >= CALLS);
    } finally {
      counting = false;
    }
    assert.deepEqual(named, []);
  });
}
