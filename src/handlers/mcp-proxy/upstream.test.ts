import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { once } from "node:events";
import { Readable, Writable } from "node:stream";
import { Agent } from "undici";
import { GatewayError } from "../../errors.js";
import { ClientDisconnect } from "../../pipeline/types.js";
import { endsEmpty, sendOnce, type ExchangeOptions } from "./upstream.js";

const signal = new AbortController().signal;

/** Collects a body the way the gateway sends it on: through `pipe`. */
function piped(body: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        out += chunk.toString("utf8");
        done();
      },
    });
    sink.on("finish", () => resolve(out)).on("error", reject);
    body.pipe(sink);
  });
}

test("endsEmpty: a body that ends without data is empty", async () => {
  assert.equal(await endsEmpty(Readable.from([]), signal), true);
});

test("endsEmpty: a body with data is not empty, and keeps all of its data", async () => {
  const body = Readable.from([Buffer.from("first "), Buffer.from("second")]);
  assert.equal(await endsEmpty(body, signal), false);
  assert.equal(await piped(body), "first second");
});

test("endsEmpty: a failing body rejects with an upstream error", async () => {
  const body = new Readable({
    read() {
      this.destroy(Object.assign(new Error("socket hang up"), { code: "UND_ERR_SOCKET" }));
    },
  });
  await assert.rejects(endsEmpty(body, signal), (err: unknown) => err instanceof GatewayError && err.code === "upstream_error");
});

/** Exchange options for `url` on `dispatcher`, with a timer that records what it is told. */
function exchangeTo(url: string, dispatcher: Agent, times: number[]): ExchangeOptions {
  return {
    dispatcher,
    method: "POST",
    url,
    headers: { "content-type": "application/json" },
    body: Buffer.from("{}"),
    signal,
    firstByteTimeoutMs: 5000,
    idleTimeoutMs: 5000,
    timer: { upstreamTime: (ms) => times.push(ms) },
  };
}

/** Listens on loopback; the upstream's `/mcp` URL and a dispatcher, both closed after the test. */
async function upstreamAt(t: TestContext, server: http.Server | net.Server): Promise<{ url: string; dispatcher: Agent }> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const dispatcher = new Agent();
  t.after(async () => {
    await dispatcher.close();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`, dispatcher };
}

test("sendOnce: answers with the upstream's response and tells the timer once", async (t) => {
  const { url, dispatcher } = await upstreamAt(t, http.createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}')));
  const times: number[] = [];
  const res = await sendOnce(exchangeTo(url, dispatcher, times));
  assert.equal(res.statusCode, 200);
  assert.equal(await res.body.text(), '{"ok":true}');
  assert.equal(times.length, 1);
  assert.ok(times[0]! >= 0);
});

test("sendOnce: a URL that is not http(s), or an unreachable upstream, rejects with a gateway error (and the timer is told)", async (t) => {
  const dispatcher = new Agent();
  t.after(() => dispatcher.close());
  for (const [url, code] of [
    ["ftp://127.0.0.1/mcp", "upstream_error"],
    ["not a url", "upstream_error"],
    ["http://127.0.0.1:1/mcp", "upstream_unreachable"],
  ] as const) {
    const times: number[] = [];
    await assert.rejects(sendOnce(exchangeTo(url, dispatcher, times)), (err: unknown) => err instanceof GatewayError && err.code === code && err.status === 502, url);
    assert.equal(times.length, 1, url);
  }
});

test("sendOnce: an answer whose header value holds a control character is refused (the header map takes parsed values as they are)", async (t) => {
  // A raw socket: Node's own server would refuse to write these values.
  let value = "";
  const server = net.createServer((socket) => {
    socket.once("data", () => socket.end(Buffer.from(`HTTP/1.1 200 OK\r\nx-test: ${value}\r\ncontent-length: 2\r\n\r\nok`, "latin1")));
  });
  const { url, dispatcher } = await upstreamAt(t, server);
  // Every character Node's writeHead refuses in a value: controls but HTAB, and DEL.
  const refused = [...Array.from({ length: 0x20 }, (_, c) => c).filter((c) => c !== 0x09 && c !== 0x0a && c !== 0x0d), 0x7f];
  for (const c of refused) {
    value = `a${String.fromCharCode(c)}b`;
    await assert.rejects(sendOnce(exchangeTo(url, dispatcher, [])), (err: unknown) => err instanceof GatewayError && err.status === 502, `0x${c.toString(16)}`);
  }
  // What it takes (HTAB, visible ASCII, obs-text) comes through unchanged and can be written back.
  value = "a\tb~\u00e9";
  const res = await sendOnce(exchangeTo(url, dispatcher, []));
  assert.equal(await res.body.text(), "ok");
  const got = res.headers["x-test"] as string;
  assert.equal(got, value);
  assert.doesNotThrow(() => http.validateHeaderValue("x-test", got));
});

test("UpstreamBody: a small answer has arrived whole when the exchange resolves, and is taken once, in one piece", async (t) => {
  const { url, dispatcher } = await upstreamAt(t, http.createServer((_req, res) => res.writeHead(200, { "content-length": "11" }).end('{"ok":true}')));
  const res = await sendOnce(exchangeTo(url, dispatcher, []));
  // The proxy writes the client's answer a microtask or more after the head: the body is complete by then.
  await Promise.resolve();
  assert.equal(res.body.complete, true);
  assert.equal(res.body.size, 11);
  assert.equal(res.body.takeWhole()?.toString(), '{"ok":true}');
  assert.equal(res.body.takeWhole(), undefined, "taken once");
  assert.equal(res.body.streaming, false);
});

test("UpstreamBody: a large answer is held to 64 KiB unread, then streams whole and in order", async (t) => {
  const size = 1024 * 1024;
  const payload = Buffer.alloc(size);
  for (let i = 0; i < size; i++) payload[i] = i % 251;
  const { url, dispatcher } = await upstreamAt(t, http.createServer((_req, res) => res.writeHead(200, { "content-length": String(size) }).end(payload)));
  const res = await sendOnce(exchangeTo(url, dispatcher, []));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(res.body.complete, false, "undici stopped reading");
  assert.ok(res.body.size >= 64 * 1024 && res.body.size < size, `held ${res.body.size} bytes`);
  assert.equal(res.body.takeWhole(), undefined);
  const parts: Buffer[] = [];
  for await (const chunk of res.body.stream()) parts.push(chunk as Buffer);
  assert.ok(Buffer.concat(parts).equals(payload));
});

test("UpstreamBody: discarding a short rest keeps the connection; discarding a long one gives it up", async (t) => {
  let length = 100;
  const carriers: net.Socket[] = [];
  const server = http.createServer((req, res) => {
    carriers.push(req.socket);
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-length": String(length) }).flushHeaders();
      // The head first, the body a moment later: the body is not all there when it is discarded.
      setTimeout(() => res.end(Buffer.alloc(length, 0x61)), 20);
    });
  });
  const { url, dispatcher } = await upstreamAt(t, server);
  const short = await sendOnce(exchangeTo(url, dispatcher, []));
  assert.equal(short.body.complete, false);
  short.body.dump();
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(carriers[0]!.destroyed, false, "the connection of the short body was kept");
  length = 1024 * 1024;
  const long = await sendOnce(exchangeTo(url, dispatcher, []));
  assert.equal(carriers[1], carriers[0], "the same connection carried the next request");
  long.body.dump();
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(carriers[1]!.destroyed, true, "the connection of the long body was given up");
  // And the dispatcher still serves.
  const after = await sendOnce(exchangeTo(url, dispatcher, []));
  assert.equal((await after.body.text()).length, length);
});

test("UpstreamBody: the client leaving ends the exchange, and the body fails", async (t) => {
  let upstreamClosed!: () => void;
  const closed = new Promise<void>((r) => (upstreamClosed = r));
  const { url, dispatcher } = await upstreamAt(
    t,
    http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" }).write("data: 1\n\n");
      res.on("close", () => upstreamClosed());
    }),
  );
  const client = new ClientDisconnect();
  const res = await sendOnce({ ...exchangeTo(url, dispatcher, []), signal: client });
  const stream = res.body.stream();
  const failed = new Promise((resolve) => stream.once("error", resolve));
  stream.resume();
  client.abort(new Error("client disconnected"));
  assert.equal(((await failed) as { code?: string }).code, "UND_ERR_ABORTED");
  await closed;
});

test("UpstreamBody: a body that breaks off fails its stream, and is never taken whole", async (t) => {
  const server = net.createServer((socket) => {
    socket.once("data", () => {
      socket.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial");
      setTimeout(() => socket.destroy(), 20);
    });
  });
  const { url, dispatcher } = await upstreamAt(t, server);
  const res = await sendOnce(exchangeTo(url, dispatcher, []));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(res.body.complete, false);
  assert.equal(res.body.takeWhole(), undefined);
  await assert.rejects(res.body.text());
});

test("endsEmpty: an arrived body answers at once; data found stays to be sent whole", async (t) => {
  let body = "";
  const { url, dispatcher } = await upstreamAt(t, http.createServer((_req, res) => res.writeHead(202).end(body)));
  const empty = await sendOnce(exchangeTo(url, dispatcher, []));
  await Promise.resolve();
  assert.equal(await endsEmpty(empty.body, signal), true);
  body = '{"late":true}';
  const full = await sendOnce(exchangeTo(url, dispatcher, []));
  assert.equal(await endsEmpty(full.body, signal), false);
  assert.equal(full.body.takeWhole()?.toString() ?? (await full.body.text()), body);
});
