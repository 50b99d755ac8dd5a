import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { once } from "node:events";
import { Readable, Writable } from "node:stream";
import { Agent } from "undici";
import { GatewayError } from "../../errors.js";
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
