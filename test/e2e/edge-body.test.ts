/**
 * Request bodies at the edge, attacked over real sockets: a large body sent without credentials
 * (it used to be buffered whole before authentication), a chunked body over the limit (it used
 * to get a TCP reset instead of 413), many bodies at once (no process-wide cap existed), and
 * 1,500 header fields (only 1,000 reached the upstream, silently). The long versions — 250
 * connections and the memory they take — are in `test/abuse/`.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startGateway, type RunningGateway } from "../helpers/harness.js";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { proxyProject, rpc } from "./mcp-proxy-helpers.js";
import { makeKey, sign, startJwksServer, type JwksServer, type TestKey } from "../helpers/jwks-fixture.js";
import { rawConnect, rawExchange } from "../helpers/raw-socket.js";
import { edgeStateOf } from "../../src/server/node.js";
import type { BodyBudget } from "../../src/server/body.js";

const MiB = 1024 * 1024;
const ISSUER = "https://idp.test/";
const AUDIENCE = "tollgate-edge";

let upstream: McpTestServer;
let jwks: JwksServer;
let key: TestKey;
let dir: string;

before(async () => {
  upstream = await startMcpTestServer({ mode: "stateless" });
  key = await makeKey("k1", "ES256");
  jwks = await startJwksServer([key]);
  const jwt = {
    name: "jwt",
    policyType: "open-id-jwt-auth-inbound",
    handler: { module: "$import(@zuplo/runtime)", export: "OpenIdJwtInboundPolicy", options: { issuer: ISSUER, audience: AUDIENCE, jwkUrl: jwks.url } },
  };
  dir = await proxyProject(
    [
      { path: "/mcp/jwt", options: { rewritePattern: upstream.url }, inbound: ["jwt"] },
      { path: "/mcp/open", options: { rewritePattern: upstream.url } },
    ],
    [jwt],
  );
});

after(async () => {
  await jwks?.close();
  await upstream?.close();
});

/** Records the highest number of buffered bytes the budget ever counted. */
function watchBudget(budget: BodyBudget): { max: () => number; reached: (n: number) => Promise<void> } {
  let max = 0;
  const waiting: Array<{ n: number; resolve: () => void }> = [];
  const take = budget.take.bind(budget);
  budget.take = (n: number) => {
    const ok = take(n);
    max = Math.max(max, budget.used);
    for (const w of waiting.splice(0)) if (budget.used >= w.n) w.resolve();
    else waiting.push(w);
    return ok;
  };
  return {
    max: () => max,
    reached: (n) => (budget.used >= n ? Promise.resolve() : new Promise((resolve) => waiting.push({ n, resolve }))),
  };
}

const head = (port: number, path: string, fields: string) =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n${fields}\r\n`;

describe("request bodies and header fields at the edge", () => {
  let gw: RunningGateway;
  let port: number;
  before(async () => {
    gw = await startGateway({ projectDir: dir });
    port = Number(new URL(gw.url).port);
  });
  after(async () => gw?.close());

  test("20 unauthenticated 4 MiB bodies: each gets 401 while the client still holds most of it; nothing is buffered", async () => {
    const watch = watchBudget(edgeStateOf(gw.server).budget);
    const conns = await Promise.all(Array.from({ length: 20 }, () => rawConnect(port)));
    const declared = 4 * MiB - 1;
    await Promise.all(conns.map((c) => c.write(head(port, "/mcp/jwt", `Content-Length: ${declared}\r\n`))));
    // 256 KiB of the body, then nothing: the answer cannot depend on the rest.
    await Promise.all(conns.map((c) => c.write(Buffer.alloc(256 * 1024, 0x20))));
    const answers = await Promise.all(conns.map((c) => c.answer));
    for (const a of answers) {
      assert.equal(a.status, 401);
      assert.equal(a.headers.connection, "close", "the unread body makes the connection unusable");
    }
    assert.equal(watch.max(), 0, "no body byte was buffered before authentication");
    for (const c of conns) c.socket.destroy();
  });

  test("a small body refused unread (401, sent with its head) leaves the connection open for the next request", async () => {
    const c = await rawConnect(port);
    const body = rpc("tools/list");
    const request = head(port, "/mcp/jwt", `Content-Length: ${body.length}\r\n`) + body;
    let after = "";
    await c.write(request);
    const first = await c.answer;
    assert.equal(first.status, 401);
    assert.notEqual(first.headers.connection, "close", "the whole body had arrived: nothing is left unread");
    c.socket.on("data", (d: Buffer) => (after += d.toString("latin1")));
    // The same socket carries the next request (with a token this time) to the upstream.
    const token = await sign(key, { iss: ISSUER, aud: AUDIENCE, sub: "alice" });
    await c.write(head(port, "/mcp/jwt", `Authorization: Bearer ${token}\r\nContent-Length: ${body.length}\r\n`) + body);
    const until = Date.now() + 10_000;
    while (!/"tools"/.test(after) && !c.socket.destroyed && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.match(after, /^HTTP\/1\.1 200 /, "the second request was answered on the same connection");
    assert.match(after, /"tools"/);
    c.socket.destroy();
  });

  test("Expect: 100-continue without credentials gets 401 and no 100 Continue", async () => {
    const c = await rawConnect(port);
    let first = "";
    c.socket.once("data", (d: Buffer) => (first = d.toString("latin1", 0, 12)));
    await c.write(head(port, "/mcp/jwt", `Content-Length: ${MiB}\r\nExpect: 100-continue\r\n`));
    assert.equal((await c.answer).status, 401);
    assert.equal(first, "HTTP/1.1 401");
    c.socket.destroy();
  });

  test("an authenticated request still gets its body read and forwarded", async () => {
    const token = await sign(key, { iss: ISSUER, aud: AUDIENCE, sub: "alice" });
    const body = rpc("tools/list");
    const res = await rawExchange(port, head(port, "/mcp/jwt", `Authorization: Bearer ${token}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n`) + body);
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, /"tools"/);
  });

  test("a chunked body over the 4 MiB limit gets 413, not a reset", async () => {
    const c = await rawConnect(port);
    await c.write(head(port, "/mcp/open", "Transfer-Encoding: chunked\r\n"));
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]);
    // 24 MiB (more than loopback socket buffers hold) and the last chunk, like a client that reads the answer only after sending everything
    // and gives up on a failed write (curl: "Send failure: Connection reset by peer").
    let unsent = 0;
    for (let sent = 0; sent < 24 * MiB; sent += chunk.length) if (!(await c.write(frame))) unsent++;
    if (!(await c.write("0\r\n\r\n"))) unsent++;
    assert.equal(unsent, 0, "the gateway kept taking (and dropping) the body after its answer instead of resetting");
    const a = await c.answer;
    assert.equal(a.status, 413);
    assert.equal(JSON.parse(a.body).code, "body_too_large");
    assert.equal(a.headers.connection, "close");
    c.socket.destroy();
  });

  test("a Content-Length over the limit gets 413 at once, without reading", async () => {
    const c = await rawConnect(port);
    await c.write(head(port, "/mcp/open", `Content-Length: ${4 * MiB + 1}\r\n`));
    assert.equal((await c.answer).status, 413);
    c.socket.destroy();
  });

  test("1,500 header fields get 431 instead of 1,000 being forwarded silently; 100 are fine", async () => {
    const fields = (n: number) => Array.from({ length: n }, (_, i) => `x${i}: 1\r\n`).join("");
    const body = rpc("tools/list");
    const tooMany = await rawExchange(port, head(port, "/mcp/open", `${fields(1_500)}Content-Length: ${body.length}\r\n`) + body);
    assert.equal(tooMany.status, 431);
    assert.equal(JSON.parse(tooMany.body).code, "too_many_headers");
    const seen = upstream.requests.length;
    const justOver = await rawExchange(port, head(port, "/mcp/open", `${fields(97)}Content-Length: ${body.length}\r\n`) + body);
    assert.equal(justOver.status, 431, "97 + the 4 fields every request here carries = 101");
    assert.equal(upstream.requests.length, seen, "nothing reached the upstream");
    const ok = await rawExchange(port, head(port, "/mcp/open", `${fields(96)}Content-Length: ${body.length}\r\n`) + body);
    assert.equal(ok.status, 200, ok.body);
  });
});

describe("the process-wide cap on buffered request bytes", () => {
  let gw: RunningGateway;
  let port: number;
  before(async () => {
    gw = await startGateway({ projectDir: dir, limits: { maxBufferedBodyBytes: MiB } });
    port = Number(new URL(gw.url).port);
  });
  after(async () => gw?.close());

  test("a body that would pass the cap gets 503 with Retry-After; the bytes are given back afterwards", async () => {
    const budget = edgeStateOf(gw.server).budget;
    const watch = watchBudget(budget);
    const size = 800 * 1024;
    const first = await rawConnect(port);
    await first.write(head(port, "/mcp/open", `Content-Length: ${size}\r\n`));
    await first.write(Buffer.alloc(size - 1, 0x20));
    await watch.reached(size);

    const second = await rawConnect(port);
    await second.write(head(port, "/mcp/open", `Content-Length: ${size}\r\n`));
    const refused = await second.answer;
    assert.equal(refused.status, 503);
    assert.equal(refused.headers["retry-after"], "1");
    assert.equal(JSON.parse(refused.body).code, "overloaded");
    second.socket.destroy();

    await first.write(" ");
    const done = await first.answer;
    assert.notEqual(done.status, 503);
    first.socket.destroy();
    assert.equal(budget.used, 0, "every buffered byte was given back");
  });
});
