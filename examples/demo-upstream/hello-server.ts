/**
 * An anonymous MCP server ("Hello") with two tools, `echo` and `time`: the quickstart's
 * upstream for a route that needs no credentials at all.
 */
import http from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { createMcpSessions } from "./mcp-sessions.js";
import { closeServer, hostForUrl, listen, readBody, sendJson } from "./http-util.js";

export interface HelloServer {
  /** The MCP endpoint, e.g. `http://127.0.0.1:9101/mcp`. */
  url: string;
  close(): Promise<void>;
}

function buildHelloServer(): McpServer {
  const server = new McpServer({ name: "Hello", version: "1.0.0" });
  server.registerTool(
    "echo",
    { description: "Echoes the given text.", inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: "text", text }] }),
  );
  server.registerTool(
    "time",
    { description: "Returns the server's current time (ISO 8601, UTC)." },
    async () => ({ content: [{ type: "text", text: new Date().toISOString() }] }),
  );
  return server;
}

/** Starts the Hello MCP server on `host:port` (port 0 picks a free one). */
export async function startHelloServer(opts: { port?: number; host?: string } = {}): Promise<HelloServer> {
  const host = opts.host ?? "127.0.0.1";
  const sessions = createMcpSessions(buildHelloServer);
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path !== "/mcp") return sendJson(res, 404, { error: "not_found" });
    void (async () => {
      let body: unknown;
      if (req.method === "POST") {
        try {
          body = JSON.parse((await readBody(req)).toString("utf8"));
        } catch {
          return sendJson(res, 400, { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } });
        }
      }
      await sessions.handle(req, res, body);
    })().catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: "server_error" });
      else res.destroy();
    });
  });
  const port = await listen(server, opts.port ?? 0, host);
  return {
    url: `http://${hostForUrl(host)}:${port}/mcp`,
    async close() {
      await sessions.close();
      await closeServer(server);
    },
  };
}
