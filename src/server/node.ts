/**
 * Node `http` ⇄ web `Request`/`Response` adapter. Request bodies are buffered (MCP messages are
 * small and the proxy may need to replay them); response bodies stream, with a zero-conversion
 * path for bodies that came straight from the upstream hop.
 */
import http from "node:http";
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { GatewayRequest } from "../pipeline/types.js";
import { untouchedNodeBody } from "../pipeline/node-body.js";
import type { Gateway } from "../gateway.js";
import { errorToResponse, GatewayError } from "../errors.js";

export interface NodeServerOptions {
  /** Largest request body accepted, in bytes (413 beyond). */
  maxBodyBytes: number;
  /** Returns the gateway to use for a request (changes on `dev` reloads). */
  gateway: () => Gateway;
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (declared > limit) {
      reject(new GatewayError("body_too_large", 413, `Request body exceeds ${limit} bytes.`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.destroy();
        reject(new GatewayError("body_too_large", 413, `Request body exceeds ${limit} bytes.`));
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function toHeaders(req: http.IncomingMessage): Headers {
  const h = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) h.append(raw[i]!, raw[i + 1]!);
  return h;
}

/**
 * Pipes a body into the response and settles once the response is closed. An error on either
 * side destroys the other: a failing upstream body aborts the client's response (never a silently
 * truncated one), a client that goes away aborts the upstream body. Hand-rolled rather than
 * `stream.pipeline`, which allocates an AbortController (and a DOMException) per call.
 */
function pipeBody(body: Readable, res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    body.once("error", (err) => res.destroy(err));
    res.once("close", () => {
      if (!body.readableEnded && !body.destroyed) body.destroy();
      resolve();
    });
    body.pipe(res);
  });
}

/** Writes a web Response to a Node ServerResponse, streaming the body. */
export async function writeResponse(res: http.ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((v, k) => {
    if (k !== "set-cookie") headers[k] = v;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length) headers["set-cookie"] = cookies;
  res.writeHead(response.status, headers);
  const nodeBody = untouchedNodeBody(response);
  if (!nodeBody && !response.body) {
    res.end();
    return;
  }
  // A body of unknown length (SSE) may stay silent for a while: send the headers now. A body of
  // known length is on its way; its first chunk carries the headers in the same write.
  if (headers["content-length"] === undefined) res.flushHeaders();
  await pipeBody(nodeBody ?? Readable.fromWeb(response.body as never), res);
}

/** Creates the Node HTTP server in front of a gateway. */
export function createNodeServer(opts: NodeServerOptions): http.Server {
  const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    void handle(req, res, opts);
  });
  server.headersTimeout = 30_000;
  return server;
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, opts: NodeServerOptions): Promise<void> {
  const gateway = opts.gateway();
  const abort = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) abort.abort(new Error("client disconnected"));
  });
  const method = req.method ?? "GET";
  const host = req.headers.host ?? "localhost";
  let response: Response;
  try {
    const rawBody = method === "GET" || method === "HEAD" ? undefined : await readBody(req, opts.maxBodyBytes);
    const request = new GatewayRequest(`http://${host}${req.url ?? "/"}`, {
      method,
      headers: toHeaders(req),
      rawBody,
      signal: abort.signal,
    });
    response = await gateway.fetch(request, { remoteAddress: req.socket.remoteAddress, signal: abort.signal });
  } catch (err) {
    response = errorToResponse(err, { mcp: false, requestId: randomUUID() });
  }
  if (res.destroyed) {
    const nodeBody = untouchedNodeBody(response);
    if (nodeBody) nodeBody.destroy();
    else await response.body?.cancel().catch(() => {});
    return;
  }
  await writeResponse(res, response);
}
