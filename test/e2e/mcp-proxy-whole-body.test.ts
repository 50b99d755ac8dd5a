/**
 * An upstream answer that has wholly arrived by the time its head is handled is sent to the
 * client in one write instead of through a stream (`writeResponse` in src/server/node.ts, over the
 * body `UpstreamBody` collected). Either way the client must get every byte, the upstream body
 * must be read to its end (so its connection goes back to the pool) and the audit trail must see
 * the answer. One route answers head and body at once (the whole-body path), one sends the body
 * 30 ms after the head (the stream), and one answers at once without a length, in two chunks
 * (whole, passed on chunked).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { startGateway, type RunningGateway } from "../helpers/harness.js";
import { MCP_POST_HEADERS, proxyProject, rpc } from "./mcp-proxy-helpers.js";

const answer = (id: number) => JSON.stringify({ jsonrpc: "2.0", id, result: { content: [{ type: "text", text: `answer ${id} ${"x".repeat(id * 100)}` }] } });

let upstream: http.Server;
let connections = 0;
let gw: RunningGateway;

before(async () => {
  upstream = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const id = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { id: number }).id;
      const body = answer(id);
      if (req.url === "/chunked") {
        res.writeHead(200, { "content-type": "application/json" });
        res.write(body.slice(0, 20));
        res.end(body.slice(20));
        return;
      }
      res.writeHead(200, { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) });
      if (req.url === "/now") res.end(body);
      else {
        res.flushHeaders();
        setTimeout(() => res.end(body), 30);
      }
    });
  });
  upstream.on("connection", () => connections++);
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const dir = await proxyProject([
    { path: "/now", options: { rewritePattern: `${origin}/now` } },
    { path: "/later", options: { rewritePattern: `${origin}/later` } },
    { path: "/chunked", options: { rewritePattern: `${origin}/chunked` } },
  ]);
  gw = await startGateway({ projectDir: dir });
});

after(async () => {
  await gw?.close();
  upstream.closeAllConnections();
  await new Promise<void>((r) => upstream.close(() => r()));
});

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
after(() => agent.destroy());

function post(path: string, body: string): Promise<{ status: number; length: string | undefined; encoding: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${gw.url}${path}`, { method: "POST", headers: MCP_POST_HEADERS, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, length: res.headers["content-length"], encoding: res.headers["transfer-encoding"], body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

for (const path of ["/now", "/later", "/chunked"]) {
  test(`${path}: every answer arrives whole, the upstream connection is reused and each call is audited`, async () => {
    const before = connections;
    const firstLog = gw.logs.length;
    for (let id = 1; id <= 8; id++) {
      const res = await post(path, rpc("tools/call", { name: "echo", arguments: {} }, id));
      assert.equal(res.status, 200);
      assert.equal(res.body, answer(id));
      if (path === "/chunked") assert.deepEqual([res.length, res.encoding], [undefined, "chunked"]);
      else assert.equal(res.length, String(Buffer.byteLength(answer(id))));
    }
    // A body left unread would keep its connection busy: every call after the first would open a new one.
    assert.ok(connections - before <= 1, `${connections - before} upstream connections for 8 sequential calls`);
    // The observation completes when the tap has seen the body end.
    await new Promise((r) => setTimeout(r, 50));
    const events = gw.logs
      .slice(firstLog)
      .map((l) => JSON.parse(l) as { event?: string; outcome?: string; capabilityName?: string })
      .filter((e) => e.event === "mcp_capability_completed");
    assert.equal(events.length, 8);
    for (const e of events) assert.deepEqual([e.outcome, e.capabilityName], ["success", "echo"]);
  });
}
