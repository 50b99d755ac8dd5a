/**
 * The demo upstream's MCP server ("Demo Notes"): the official SDK's `McpServer` behind a bearer
 * token check. Tokens are the authorization server's opaque access tokens, looked up the way the
 * introspection endpoint would (so a revoked or expired token stops working at once), and must
 * be bound to this resource (RFC 8707 audience).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3 The WWW-Authenticate response header
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1 resource_metadata in challenges
 */
import type http from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import { z } from "zod";
import { createMcpSessions, type McpSessions } from "./mcp-sessions.js";
import { readBody, sendJson } from "./http-util.js";

export interface ResourceServerOptions {
  /** This server's resource identifier (its MCP URL). */
  resource: string;
  /** Where the 401 challenge's `resource_metadata` points. */
  resourceMetadataUrl: string;
  /** Scopes every authenticated request must carry. */
  requiredScopes: string[];
  /** `scope=` of the 401 challenge, if any. */
  challengeScopes: string[] | undefined;
  /** When set, only `tools/call` needs a token; other methods work anonymously. */
  challengeOnlyAt: "tools/call" | undefined;
  /** Looks a bearer token up; undefined when unknown, expired or revoked. */
  verify(token: string): Promise<AuthInfo | undefined>;
  /** Receives every Authorization header value that arrives (for tests). */
  seenAuthorizations: string[];
  name: string;
}

function textResult(text: string, structured?: Record<string, unknown>) {
  return {
    content: [{ type: "text" as const, text }],
    ...(structured ? { structuredContent: structured } : {}),
  };
}

/** The tools every session of the demo server offers. */
export function buildNotesServer(name: string): McpServer {
  const server = new McpServer({ name, version: "1.0.0" });
  server.registerTool(
    "whoami",
    {
      description: "Returns the upstream account (token subject) this request runs as.",
      outputSchema: { sub: z.string(), scopes: z.array(z.string()) },
    },
    async (extra) => {
      const sub = typeof extra.authInfo?.extra?.sub === "string" ? extra.authInfo.extra.sub : "anonymous";
      return textResult(sub, { sub, scopes: extra.authInfo?.scopes ?? [] });
    },
  );
  server.registerTool(
    "echo",
    { description: "Echoes the given text.", inputSchema: { text: z.string() } },
    async ({ text }) => textResult(text),
  );
  server.registerTool(
    "add",
    { description: "Adds two numbers.", inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => textResult(String(a + b)),
  );
  return server;
}

function quote(v: string): string {
  return `"${v.replace(/["\\]/g, "\\$&")}"`;
}

function methodsOf(body: unknown): string[] {
  const msgs = Array.isArray(body) ? body : [body];
  return msgs.flatMap((m) => (typeof m === "object" && m !== null && typeof m.method === "string" ? [m.method] : []));
}

/** The MCP endpoint with its bearer check. */
export function createResourceServer(opts: ResourceServerOptions): {
  handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
  sessions: McpSessions;
} {
  const sessions = createMcpSessions(() => buildNotesServer(opts.name));

  function challenge(res: http.ServerResponse, status: 401 | 403, error: string | undefined, scopes: string[] | undefined) {
    const parts = [`resource_metadata=${quote(opts.resourceMetadataUrl)}`];
    if (error) parts.unshift(`error=${quote(error)}`);
    if (scopes?.length) parts.push(`scope=${quote(scopes.join(" "))}`);
    const description = status === 401 ? "Authorization required" : "Insufficient scope";
    sendJson(res, status, { error: error ?? "unauthorized", error_description: description }, {
      "www-authenticate": `Bearer ${parts.join(", ")}`,
    });
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const authorization = req.headers.authorization;
    if (authorization !== undefined) opts.seenAuthorizations.push(authorization);
    let body: unknown;
    if (req.method === "POST") {
      const raw = await readBody(req);
      try {
        body = JSON.parse(raw.toString("utf8"));
      } catch {
        sendJson(res, 400, { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } });
        return;
      }
    }
    const needsAuth = opts.challengeOnlyAt === undefined || methodsOf(body).includes(opts.challengeOnlyAt);
    let auth: AuthInfo | undefined;
    if (authorization !== undefined) {
      const m = /^Bearer ([A-Za-z0-9._~+/=-]+)$/i.exec(authorization);
      auth = m ? await opts.verify(m[1]!) : undefined;
      if (!auth) return challenge(res, 401, "invalid_token", opts.challengeScopes);
    } else if (needsAuth) {
      return challenge(res, 401, undefined, opts.challengeScopes);
    }
    if (auth && needsAuth && !opts.requiredScopes.every((s) => auth.scopes.includes(s))) {
      const union = [...new Set([...auth.scopes, ...opts.requiredScopes])];
      return challenge(res, 403, "insufficient_scope", union);
    }
    await sessions.handle(req, res, body, auth);
  }

  return { handle, sessions };
}
