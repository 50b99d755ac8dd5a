import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { once } from "node:events";
import { BodyBudget, NodeRequestBody } from "./body.js";
import { GatewayError } from "../errors.js";

/** A real server whose handler gets each request's body reader; the client sends `raw` in one write. */
async function withRequest(
  raw: string,
  fn: (body: NodeRequestBody, req: http.IncomingMessage) => Promise<void>,
  opts: { idleMs?: number; more?: (socket: net.Socket) => Promise<void> } = {},
): Promise<void> {
  let failure: unknown;
  const server = http.createServer((req, res) => {
    const body = new NodeRequestBody(req, res, { maxBodyBytes: 16, bodyIdleTimeoutMs: opts.idleMs ?? 0 }, new BodyBudget(1024));
    fn(body, req)
      .catch((err: unknown) => (failure = err))
      .finally(() => res.end());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const socket = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  socket.write(raw);
  await opts.more?.(socket);
  await once(socket, "data");
  socket.destroy();
  server.close();
  if (failure) throw failure;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const post = (body: string, length = body.length) => `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\n\r\n${body}`;

test("readNow: nothing while the body is still being parsed, the bytes once it has arrived, the same bytes as read()", async () => {
  await withRequest(post("hello"), async (body) => {
    // The request event comes before the parser reaches the body.
    assert.equal(body.readNow(), undefined);
    assert.equal(Buffer.from(await body.read()).toString(), "hello");
    assert.equal(Buffer.from(body.readNow()!).toString(), "hello");
  });
  await withRequest(post("world"), async (body, req) => {
    await new Promise((r) => setImmediate(r));
    assert.equal(req.complete, true);
    const now = body.readNow();
    assert.equal(Buffer.from(now!).toString(), "world");
    assert.equal(await body.read(), now);
  });
});

test("read() asked for during the request event takes a body that came with the head from the buffer; a later body is read as it arrives", async () => {
  await withRequest(post("hello"), async (body, req) => {
    assert.equal(req.complete, false, "the request event comes before the parser reaches the body");
    const added: Array<string | symbol> = [];
    const on = req.on;
    req.on = function (this: http.IncomingMessage, event: string | symbol, listener: (...args: any[]) => void) {
      added.push(event);
      return on.call(this, event, listener);
    } as typeof req.on;
    const read = body.read();
    assert.equal(body.started, true);
    assert.equal(Buffer.from(await read).toString(), "hello");
    assert.deepEqual(added, [], "no listener: the body was taken from the stream's buffer");
    // The request still ends as one read to the end does.
    await once(req, "end");
    assert.equal(req.complete, true);
  });
  // Head first, the body 50 ms later: the read waits for it with listeners.
  let sawListener = false;
  await withRequest(post("", 5), async (body, req) => {
    const read = body.read();
    await sleep(20);
    sawListener = req.listenerCount("data") > 0;
    assert.equal(Buffer.from(await read).toString(), "later");
  }, {
    more: async (socket) => {
      await sleep(50);
      socket.write("later");
    },
  });
  assert.equal(sawListener, true, "a body still to come is read as it arrives");
});

test("readNow on a body over the limit gives nothing; read() refuses it with 413", async () => {
  await withRequest(post("x".repeat(20)), async (body) => {
    await new Promise((r) => setImmediate(r));
    assert.equal(body.readNow(), undefined);
    await assert.rejects(body.read(), (err: unknown) => err instanceof GatewayError && err.status === 413);
  });
});

test("a body that stops arriving is refused with 408 after the idle timeout (not before, at most a quarter later)", async () => {
  const IDLE = 200;
  await withRequest(post("ab", 10), async (body) => {
    const t0 = performance.now();
    await assert.rejects(body.read(), (err: unknown) => err instanceof GatewayError && err.status === 408 && err.code === "body_timeout");
    const waited = performance.now() - t0;
    assert.ok(waited >= IDLE - 5, `refused after ${waited} ms`);
    assert.ok(waited < IDLE * 1.25 + 150, `refused after ${waited} ms`);
  }, { idleMs: IDLE });
});

test("a body whose pieces arrive more often than the idle timeout is read whole, however long it takes", async () => {
  const IDLE = 200;
  await withRequest(post("a", 6), async (body) => {
    assert.equal(Buffer.from(await body.read()).toString(), "abcdef");
  }, {
    idleMs: IDLE,
    more: async (socket) => {
      for (const c of "bcdef") {
        await sleep(IDLE / 2);
        socket.write(c);
      }
    },
  });
});
