/**
 * The benchmark's load generator sends one request written out whole (`rawRequest`), so that
 * every run sends the same fields in the same order, as one real client does. A request that
 * Node's parser reads differently from the spec (a field lost, the body cut, another order) would
 * make the benchmark measure something else than it says.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { once } from "node:events";
import { rawRequest, toolsCallSpec, TOOLS_CALL_BODY } from "../../bench/load.js";

test("bench: the raw request is read by Node as the spec says, fields in the spec's order, twice over one connection", async () => {
  const seen: { method: string; url: string; raw: string[]; body: string }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, raw: req.rawHeaders, body: Buffer.concat(chunks).toString("utf8") });
      res.end("ok");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  try {
    const spec = toolsCallSpec(`http://127.0.0.1:${port}/mcp?x=1`, "token-1");
    const bytes = rawRequest(spec);
    const socket = net.connect(port, "127.0.0.1");
    await once(socket, "connect");
    let answered = "";
    socket.on("data", (d: Buffer) => (answered += d.toString("latin1")));
    socket.write(bytes + bytes);
    const deadline = Date.now() + 5000;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    socket.destroy();
    assert.equal(seen.length, 2, `two requests read, answers: ${answered}`);
    for (const r of seen) {
      assert.equal(r.method, "POST");
      assert.equal(r.url, "/mcp?x=1");
      assert.equal(r.body, TOOLS_CALL_BODY);
      const names = r.raw.filter((_, i) => i % 2 === 0);
      assert.deepEqual(names, ["Host", ...Object.keys(spec.headers), "Content-Length"]);
      assert.equal(r.raw[1], `127.0.0.1:${port}`);
      assert.equal(r.raw[r.raw.indexOf("authorization") + 1], "Bearer token-1");
      assert.equal(r.raw[r.raw.length - 1], String(Buffer.byteLength(TOOLS_CALL_BODY)));
    }
  } finally {
    server.close();
  }
});

test("bench: a request without a body has no Content-Length", () => {
  const raw = rawRequest({ url: "http://127.0.0.1:1/mcp", method: "GET", headers: { accept: "text/event-stream" } });
  assert.equal(raw, "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:1\r\naccept: text/event-stream\r\n\r\n");
});
