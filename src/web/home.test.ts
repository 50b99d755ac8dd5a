import { test } from "node:test";
import assert from "node:assert/strict";
import { testGateway } from "../../test/helpers/test-kit.js";
import { createBrowserSession, ensureWebRoutes } from "./index.js";

const EVIL = `<img src=x onerror="alert(1)">`;

test("GET / names every route (escaped) and has the page security headers", async () => {
  const gw = await testGateway([], [
    { path: "/mcp/notes", operationId: "notes", mcp: true, inbound: [] },
    { path: "/mcp/{tenant}", operationId: EVIL, mcp: true, inbound: [] },
    { path: "/hello", methods: ["GET"], operationId: "hello", inbound: [] },
  ]);
  try {
    const res = await gw.gateway.fetch(new Request("http://gw.test/", { headers: { accept: "text/html" } }));
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/html/);
    assert.match(res.headers.get("content-security-policy")!, /default-src 'none'/);
    assert.equal(res.headers.get("cache-control"), "no-store");
    const html = await res.text();
    assert.match(html, /<code>\/mcp\/notes<\/code>/);
    assert.match(html, /MCP server URL: <code>http:\/\/gw\.test\/mcp\/notes<\/code>/);
    assert.match(html, /<code>\/mcp\/\{tenant\}<\/code>/);
    assert.match(html, /<code>\/hello<\/code>/);
    assert.ok(!html.includes(EVIL), "operationIds are escaped");
    assert.ok(html.includes("&#60;img src&#61;x onerror&#61;&#34;alert(1)&#34;&#62;"));
    assert.doesNotMatch(html, /Your connections/, "no connections page without upstream OAuth");
    assert.match(html, /<header class="account" data-signed-in="false"><span>Not signed in<\/span><\/header>/, "nobody signed in, nowhere to sign in");
    const head = await gw.gateway.fetch(new Request("http://gw.test/", { method: "HEAD" }));
    assert.equal(head.status, 200);
  } finally {
    await gw.close();
  }
});

test("GET / answers JSON when asked for it", async () => {
  const gw = await testGateway([], [{ path: "/mcp/notes", operationId: "notes", mcp: true, inbound: [] }]);
  try {
    const res = await gw.gateway.fetch(new Request("http://gw.test/", { headers: { accept: "application/json" } }));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      routes: [{ path: "/mcp/notes", name: "notes", methods: ["GET", "POST"], mcp: true, url: "http://gw.test/mcp/notes" }],
      connections: null,
    });
  } finally {
    await gw.close();
  }
});

test("a project route for GET / wins over the page", async () => {
  const gw = await testGateway([], [{ path: "/", methods: ["GET"], operationId: "root", inbound: [], handler: () => new Response("the project's own") }]);
  try {
    const res = await gw.gateway.fetch(new Request("http://gw.test/"));
    assert.equal(await res.text(), "the project's own");
  } finally {
    await gw.close();
  }
});

test("only GET / is taken: unknown paths stay 404, other methods on / are 405", async () => {
  const gw = await testGateway([], [{ path: "/mcp/notes", operationId: "notes", mcp: true, inbound: [] }]);
  try {
    assert.equal((await gw.gateway.fetch(new Request("http://gw.test/nothing-here"))).status, 404);
    assert.equal((await gw.gateway.fetch(new Request("http://gw.test/", { method: "POST" }))).status, 405);
  } finally {
    await gw.close();
  }
});

test("GET / shows who is signed in, with sign-out back to /", async () => {
  const gw = await testGateway([], [{ path: "/mcp/notes", operationId: "notes", mcp: true, inbound: [] }], { settings: { devLogin: true } });
  try {
    ensureWebRoutes(gw.services);
    const out = await (await gw.gateway.fetch(new Request("http://gw.test/", { headers: { accept: "text/html" } }))).text();
    assert.match(out, /Not signed in<\/span><a class="link" href="\/__tollgate\/login\?return_to&#61;%2F">Sign in<\/a>/);
    const cookie = await createBrowserSession(new Request("http://gw.test/"), gw.services, { sub: "alice", data: { name: "Alice" } }, { via: "dev" });
    const res = await gw.gateway.fetch(new Request("http://gw.test/", { headers: { accept: "text/html", cookie: cookie.split(";")[0]! } }));
    const html = await res.text();
    assert.match(html, /Signed in as <strong>Alice<\/strong>/);
    assert.match(html, /<form method="post" action="\/__tollgate\/logout"><input type="hidden" name="csrf" value="[^"]+"><input type="hidden" name="return_to" value="\/">/);
  } finally {
    await gw.close();
  }
});
