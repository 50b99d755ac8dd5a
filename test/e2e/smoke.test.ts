/**
 * Smoke test: the smallest complete path a new install must get right. A gateway with one
 * anonymous MCP route in front of an official-SDK MCP server (stateful Streamable HTTP), driven
 * by the official SDK client: initialize, tools/list, tools/call — in process with the memory
 * store, and as `tollgate start --workers 2` with the default SQLite store.
 *
 * CI also runs this file under the newest Node LTS line, with the native SQLite module built for
 * it, to catch runtime regressions early.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";
import { generateKey } from "../../src/store/crypto.js";
import { exitOf, outputOf, spawnCli, waitForLine } from "../helpers/cli.js";
import { startGateway } from "../helpers/harness.js";
import { proxyProject } from "./mcp-proxy-helpers.js";

/** An official-SDK MCP server with one `add` tool, one session per `initialize`. */
async function startUpstream(): Promise<{ url: string; sessions: number; open: number; close(): Promise<void> }> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const state = { sessions: 0 };
  const server = http.createServer((req, res) => {
    void (async () => {
      const sid = req.headers["mcp-session-id"];
      let transport = typeof sid === "string" ? transports.get(sid) : undefined;
      if (!transport) {
        if (typeof sid === "string" || req.method !== "POST") {
          res.writeHead(404, { "content-type": "application/json" }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}');
          return;
        }
        const t = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => {
            state.sessions++;
            transports.set(id, t);
          },
        });
        t.onclose = () => {
          if (t.sessionId) transports.delete(t.sessionId);
        };
        const mcp = new McpServer({ name: "smoke-upstream", version: "1.0.0" });
        mcp.registerTool(
          "add",
          { description: "Adds two numbers", inputSchema: { a: z.number(), b: z.number() } },
          ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }] }),
        );
        await mcp.connect(t);
        transport = t;
      }
      await transport.handleRequest(req, res);
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  server.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    get sessions() {
      return state.sessions;
    },
    get open() {
      return transports.size;
    },
    async close() {
      for (const t of transports.values()) await t.close().catch(() => {});
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** initialize, tools/list, tools/call and DELETE through `${gatewayUrl}/mcp/smoke`. */
async function exercise(gatewayUrl: string, upstream: Awaited<ReturnType<typeof startUpstream>>): Promise<void> {
  const client = new Client({ name: "smoke-client", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${gatewayUrl}/mcp/smoke`));
  try {
    await client.connect(transport);
    assert.equal(client.getServerVersion()?.name, "smoke-upstream");
    assert.ok(transport.sessionId, "the upstream's Mcp-Session-Id reaches the client");
    assert.equal(upstream.sessions, 1);

    const { tools } = await client.listTools();
    assert.deepEqual(
      tools.map((tool) => tool.name),
      ["add"],
    );

    const result = await client.callTool({ name: "add", arguments: { a: 2, b: 40 } });
    assert.deepEqual(result.content, [{ type: "text", text: "42" }]);

    await transport.terminateSession();
    assert.equal(upstream.open, 0, "DELETE ended the upstream session");
  } finally {
    await client.close().catch(() => {});
  }
}

test("initialize, tools/list and tools/call through an anonymous MCP route", async () => {
  const upstream = await startUpstream();
  const projectDir = await proxyProject([{ path: "/mcp/smoke", options: { rewritePattern: upstream.url } }]);
  const gw = await startGateway({ projectDir }).catch(async (err: unknown) => {
    await upstream.close();
    throw err;
  });
  try {
    await exercise(gw.url, upstream);
  } finally {
    await gw.close();
    await upstream.close();
  }
});

test("the same through `tollgate start --workers 2` on the default SQLite store", async () => {
  const upstream = await startUpstream();
  const projectDir = await proxyProject([{ path: "/mcp/smoke", options: { rewritePattern: upstream.url } }]);
  const child = spawnCli(["start", "--project", projectDir, "--port", "0", "--workers", "2"], { TOLLGATE_ENCRYPTION_KEY: generateKey() });
  try {
    const [, url] = await waitForLine(child, /at (http:\/\/127\.0\.0\.1:\d+).* with 2 workers/, 120_000);
    const ready = await fetch(`${url}/readyz`);
    assert.deepEqual(await ready.json(), { status: "ok", store: "sqlite" });
    await exercise(url!, upstream);
    child.kill("SIGTERM");
    assert.equal(await exitOf(child), 0, outputOf(child).stderr);
  } finally {
    child.kill("SIGKILL");
    await upstream.close();
  }
});
