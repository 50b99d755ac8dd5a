/**
 * Shared pieces of the McpProxyHandler end-to-end tests: a project with MCP proxy routes, a raw
 * HTTP client that can send any header (WHATWG fetch refuses hop-by-hop ones), and JSON-RPC
 * bodies.
 */
import http from "node:http";
import { writeProject } from "../helpers/harness.js";

export interface ProxyRoute {
  path: string;
  options: Record<string, unknown>;
  /** Inbound policy names. */
  inbound?: string[];
  methods?: string;
}

/** Writes a project whose routes proxy with McpProxyHandler; `modules` are extra files (e.g. policies). */
export function proxyProject(
  routes: ProxyRoute[],
  policies: unknown[] = [],
  modules: Record<string, string> = {},
): Promise<string> {
  const paths: Record<string, unknown> = {};
  routes.forEach((r, i) => {
    paths[r.path] = {
      [r.methods ?? "get,post,delete"]: {
        operationId: `mcp-${i}`,
        "x-zuplo-route": {
          corsPolicy: "none",
          handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: "McpProxyHandler", options: r.options },
          policies: { inbound: r.inbound ?? [] },
        },
      },
    };
  });
  return writeProject({
    "config/routes.oas.json": JSON.stringify({ openapi: "3.1.0", info: { title: "mcp proxy test", version: "1" }, paths }),
    "config/policies.json": JSON.stringify({ policies }),
    ...modules,
  });
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Sends one request with exactly the given headers (node:http, no connection reuse). */
export function rawRequest(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? "POST", headers: init.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(init.body);
  });
}

/** Headers every Streamable HTTP POST carries. */
export const MCP_POST_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
};

/** A JSON-RPC request body. */
export function rpc(method: string, params: Record<string, unknown> = {}, id: number | string = 1): string {
  return JSON.stringify({ jsonrpc: "2.0", id, method, params });
}

/** An initialize request body for the 2025-11-25 revision. */
export function initializeBody(id: number | string = 1): string {
  return rpc(
    "initialize",
    { protocolVersion: "2025-11-25", capabilities: { elicitation: { url: {} } }, clientInfo: { name: "raw-test", version: "1.0.0" } },
    id,
  );
}

/** Parses the JSON-RPC messages out of an SSE body. */
export function sseMessages(body: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const block of body.split(/\n\n/)) {
    const data = block
      .split("\n")
      .filter((l) => l.startsWith("data:"))
      .map((l) => l.slice(5).trimStart())
      .join("\n");
    if (data) out.push(JSON.parse(data) as Record<string, unknown>);
  }
  return out;
}
