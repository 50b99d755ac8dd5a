/**
 * Slow clients (slowloris). Before, the server ran with `requestTimeout: 0`: a connection that
 * trickled body bytes stayed open forever. Now receiving a request is bounded — header fields,
 * the whole request, and the pause between body pieces — and answered 408, while answers that
 * stream for long (a GET SSE stream, a POST answered with SSE) are never cut. Short limits here;
 * the 1,000-connection version is `test/abuse/slowloris.test.ts`.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { startGateway, type RunningGateway } from "../helpers/harness.js";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { proxyProject } from "./mcp-proxy-helpers.js";
import { rawConnect, type RawConnection } from "../helpers/raw-socket.js";

let upstream: McpTestServer;
let gw: RunningGateway;
let port: number;

before(async () => {
  upstream = await startMcpTestServer({ mode: "stateful" });
  const dir = await proxyProject([{ path: "/mcp/open", options: { rewritePattern: upstream.url } }]);
  gw = await startGateway({ projectDir: dir, limits: { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000, bodyIdleTimeoutMs: 500 } });
  port = Number(new URL(gw.url).port);
});

after(async () => {
  await gw?.close();
  await upstream?.close();
});

const postHead = (fields: string) =>
  `POST /mcp/open HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n${fields}\r\n`;

/** Sends one byte every 100 ms until the gateway answers or closes; resolves with the status (0: closed without one). */
async function trickle(c: RawConnection, byte: string): Promise<number> {
  let settled = false;
  const outcome = c.answer.then(
    (a) => a.status,
    () => 0,
  );
  void outcome.finally(() => (settled = true));
  while (!settled) {
    if (!(await c.write(byte))) break;
    await Promise.race([outcome, new Promise((r) => setTimeout(r, 100))]);
  }
  const status = await outcome;
  c.socket.destroy();
  return status;
}

describe("receive timeouts", () => {
  test("a body that stops arriving gets 408 after the idle timeout", async () => {
    const c = await rawConnect(port);
    await c.write(postHead("Content-Length: 1000\r\n") + '{"jsonrpc":');
    const a = await c.answer;
    assert.equal(a.status, 408);
    assert.equal(JSON.parse(a.body).code, "body_timeout");
    assert.equal(a.headers.connection, "close");
    c.socket.destroy();
  });

  test("a body trickled a byte at a time (never idle) is cut by the whole-request timeout with 408", async () => {
    const c = await rawConnect(port);
    await c.write(postHead("Content-Length: 100000\r\n"));
    assert.equal(await trickle(c, " "), 408);
  });

  test("header fields trickled a line at a time get 408", async () => {
    const c = await rawConnect(port);
    await c.write(`POST /mcp/open HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`);
    assert.equal(await trickle(c, "X-Slow: 1\r\n"), 408);
  });

  test("a GET SSE stream and a POST answered with SSE outlive every receive timeout", async () => {
    const client = new Client({ name: "edge-timeouts", version: "1.0.0" });
    let listChanged!: () => void;
    const changed = new Promise<void>((r) => (listChanged = r));
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => listChanged());
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp/open`)));
    try {
      let progressed!: () => void;
      const firstProgress = new Promise<void>((r) => (progressed = r));
      const held = client.callTool({ name: "slow_progress", arguments: { steps: 2, hold: true } }, undefined, {
        onprogress: () => progressed(),
        timeout: 120_000,
      });
      await firstProgress;
      // A slow client on another connection runs into the whole-request timeout (2 s) …
      const slow = await rawConnect(port);
      await slow.write(postHead("Content-Length: 100000\r\n"));
      assert.equal(await trickle(slow, " "), 408);
      // … while the POST's SSE answer, open since before, still delivers its result,
      upstream.release();
      const result = (await held) as { content: Array<{ text: string }> };
      assert.equal(result.content[0]!.text, "done after 2 steps");
      // and the session's GET stream still carries notifications.
      await client.callTool({ name: "notify", arguments: {} });
      await changed;
    } finally {
      await client.close();
    }
  });
});
