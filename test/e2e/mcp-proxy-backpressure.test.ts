/**
 * Response bodies through the gateway when the client reads slower than the upstream writes:
 * the gateway must pause the upstream body while the client's socket is full (so a stalled client
 * cannot make it buffer an upstream's output) and resume when it drains, delivering every byte in
 * order — for a large JSON answer of known length and for an SSE stream — and a client that leaves
 * mid-body must make the gateway drop the upstream body.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";
import { startGateway, type RunningGateway } from "../helpers/harness.js";
import { MCP_POST_HEADERS, proxyProject } from "./mcp-proxy-helpers.js";

const BIG = Buffer.alloc(16 * 1024 * 1024);
for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 7 + (i >> 11)) & 0xff;
const EVENTS = 2000;
const event = (i: number) => `id: ${i}\nevent: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: { progress: i, pad: "x".repeat(2000) } })}\n\n`;

let upstream: http.Server;
let upstreamClosedEarly: Promise<boolean>;
/** Bytes the endless upstream has handed to its socket so far. */
let endlessWritten = 0;
let gw: RunningGateway;

before(async () => {
  let markEarly: (v: boolean) => void = () => {};
  upstreamClosedEarly = new Promise((r) => (markEarly = r));
  upstream = http.createServer((req, res) => {
    req.resume();
    if (req.url === "/big") {
      res.writeHead(200, { "content-type": "application/json", "content-length": String(BIG.length) });
      res.end(BIG);
    } else if (req.url === "/sse") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (let i = 0; i < EVENTS; i++) res.write(event(i));
      res.end();
    } else {
      // Writes until the gateway stops reading; reports whether the gateway let go of it.
      res.writeHead(200, { "content-type": "application/json", "content-length": String(1024 * 1024 * 1024) });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        do endlessWritten += chunk.length;
        while (res.write(chunk));
      };
      res.on("drain", pump);
      res.on("close", () => markEarly(!res.writableFinished));
      pump();
    }
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const dir = await proxyProject([
    { path: "/big", options: { rewritePattern: `${origin}/big` } },
    { path: "/sse", options: { rewritePattern: `${origin}/sse` } },
    { path: "/endless", options: { rewritePattern: `${origin}/endless` } },
  ]);
  gw = await startGateway({ projectDir: dir });
});

after(async () => {
  await gw?.close();
  upstream.closeAllConnections();
  await new Promise<void>((r) => upstream.close(() => r()));
});

/** POSTs and reads the answer slowly: paused for a while after every 1 MiB. */
function slowRead(path: string): Promise<{ status: number; body: Buffer; pauses: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${gw.url}${path}`, { method: "POST", headers: MCP_POST_HEADERS }, (res) => {
      const chunks: Buffer[] = [];
      let sinceLastPause = 0;
      let pauses = 0;
      res.on("data", (c: Buffer) => {
        chunks.push(c);
        sinceLastPause += c.length;
        if (sinceLastPause >= 1024 * 1024) {
          sinceLastPause = 0;
          pauses++;
          res.pause();
          setTimeout(() => res.resume(), 20);
        }
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), pauses }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"big"}}');
  });
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

test("a large answer of known length arrives whole and in order through a slow client", async () => {
  const r = await slowRead("/big");
  assert.equal(r.status, 200);
  assert.ok(r.pauses >= 8, `the client paused ${r.pauses} times`);
  assert.equal(r.body.length, BIG.length);
  assert.equal(sha(r.body), sha(BIG));
});

test("an SSE stream arrives whole and in order through a slow client", async () => {
  const r = await slowRead("/sse");
  assert.equal(r.status, 200);
  let expected = "";
  for (let i = 0; i < EVENTS; i++) expected += event(i);
  assert.equal(r.body.toString("utf8"), expected);
});

test("a stalled client holds the upstream back, and leaving mid-body drops the upstream body", async () => {
  let stalledAt = 0;
  await new Promise<void>((resolve, reject) => {
    const req = http.request(`${gw.url}/endless`, { method: "POST", headers: MCP_POST_HEADERS }, (res) => {
      let got = 0;
      res.on("data", (c: Buffer) => {
        got += c.length;
        if (got > 4 * 1024 * 1024 && stalledAt === 0) {
          // Stop reading for a second: without backpressure the gateway would keep reading the
          // upstream (hundreds of MiB per second on loopback) into memory.
          res.pause();
          stalledAt = endlessWritten;
          setTimeout(() => {
            const during = endlessWritten - stalledAt;
            req.destroy();
            if (during > 64 * 1024 * 1024) reject(new Error(`the upstream wrote ${during} bytes while the client read nothing`));
            else resolve();
          }, 1000);
        }
      });
    });
    req.on("error", () => {});
    req.end("{}");
    setTimeout(() => reject(new Error("no data")), 10_000).unref();
  });
  assert.ok(stalledAt > 0);
  const early = await Promise.race([upstreamClosedEarly, new Promise<string>((r) => setTimeout(() => r("timeout"), 10_000).unref())]);
  assert.equal(early, true, "the upstream response was closed before it finished");
});
