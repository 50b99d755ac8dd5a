/**
 * The minimal upstream for the benchmark, run as its own process: a bare `node:http` server that
 * answers a `tools/call` with a fixed JSON result, `initialize` with a session id, notifications
 * with 202, and `GET` with an SSE stream that stays open and idle.
 *
 * Not the MCP SDK on purpose: a stateless SDK server builds a server and transport per request
 * and costs several times more CPU than a proxy hop, so on a 2-core machine it would dominate
 * every measurement. The proxies under test never look past the HTTP layer of these answers.
 *
 * Prints `{"port": N}` on stdout once listening.
 */
import http from "node:http";
import { serveAsChild } from "./child-server.js";

const TOOL_RESULT = { content: [{ type: "text", text: "hello" }], isError: false };
let openStreams = 0;
/** Requests that arrived with an Authorization header (the benchmark checks who forwards one). */
let withAuthorization = 0;

function answer(res: http.ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...extra,
  });
  res.end(body);
}

const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  if (req.method === "GET" && req.url === "/stats") {
    answer(res, 200, JSON.stringify({ openStreams, withAuthorization }));
    return;
  }
  if (req.headers.authorization !== undefined) withAuthorization++;
  if (req.method === "GET") {
    openStreams++;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.write(": stream open\n\n");
    res.on("close", () => openStreams--);
    return;
  }
  if (req.method === "DELETE") {
    answer(res, 200, "{}");
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    let msg: { id?: unknown; method?: string } = {};
    try {
      msg = JSON.parse(Buffer.concat(chunks).toString("utf8")) as typeof msg;
    } catch {
      answer(res, 400, JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } }));
      return;
    }
    if (msg.id === undefined) {
      res.writeHead(202).end();
      return;
    }
    if (msg.method === "initialize") {
      const result = {
        protocolVersion: "2025-11-25",
        capabilities: { tools: {} },
        serverInfo: { name: "bench-upstream", version: "1.0.0" },
      };
      answer(res, 200, JSON.stringify({ jsonrpc: "2.0", id: msg.id, result }), {
        "mcp-session-id": `s-${Math.random().toString(36).slice(2)}`,
      });
      return;
    }
    answer(res, 200, JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: TOOL_RESULT }));
  });
});

serveAsChild(server);
