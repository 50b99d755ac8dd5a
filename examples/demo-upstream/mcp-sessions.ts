/**
 * A stateful MCP Streamable HTTP endpoint on the official SDK: one `McpServer` + transport per
 * session, created on `initialize`, found again by `Mcp-Session-Id`, removed on `DELETE`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management
 */
import { randomUUID } from "node:crypto";
import type http from "node:http";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import { sendJson } from "./http-util.js";

export interface McpSessions {
  /** Serves one request; `body` is the parsed JSON body of a POST (undefined otherwise). */
  handle(req: http.IncomingMessage, res: http.ServerResponse, body: unknown, auth?: AuthInfo): Promise<void>;
  /** Number of open sessions. */
  readonly size: number;
  close(): Promise<void>;
}

function isInitialize(body: unknown): boolean {
  const msgs = Array.isArray(body) ? body : [body];
  return msgs.some((m) => typeof m === "object" && m !== null && (m as { method?: unknown }).method === "initialize");
}

/** Creates the session table for servers built by `createServer`. */
export function createMcpSessions(createServer: () => McpServer): McpSessions {
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; server: McpServer }>();

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, body: unknown, auth?: AuthInfo) {
    const withAuth = req as http.IncomingMessage & { auth?: AuthInfo };
    if (auth) withAuth.auth = auth;
    const sid = req.headers["mcp-session-id"];
    const sessionId = Array.isArray(sid) ? sid[0] : sid;
    if (sessionId) {
      const found = sessions.get(sessionId);
      if (!found) {
        sendJson(res, 404, { jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } });
        return;
      }
      await found.transport.handleRequest(withAuth, res, body);
      return;
    }
    if (req.method !== "POST" || !isInitialize(body)) {
      sendJson(res, 400, {
        jsonrpc: "2.0",
        id: null,
        error: { code: -32000, message: "Bad Request: no valid session id provided" },
      });
      return;
    }
    const server = createServer();
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => void sessions.set(id, { transport, server }),
      onsessionclosed: (id) => void sessions.delete(id),
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(withAuth, res, body);
  }

  return {
    handle,
    get size() {
      return sessions.size;
    },
    async close() {
      const all = [...sessions.values()];
      sessions.clear();
      await Promise.all(all.map(({ server }) => server.close().catch(() => {})));
    },
  };
}
