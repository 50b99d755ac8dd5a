/**
 * Node `http` ⇄ web `Request`/`Response` adapter. Request bodies are buffered (MCP messages are
 * small and the proxy may need to replay them); response bodies stream, with a zero-conversion
 * path for bodies that came straight from the upstream hop.
 */
import http from "node:http";
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { ClientDisconnect, IncomingRequest } from "../pipeline/types.js";
import { HeaderMap } from "../pipeline/header-map.js";
import { untouchedNodeBody } from "../pipeline/node-body.js";
import type { Gateway } from "../gateway.js";
import { errorToResponse, GatewayError } from "../errors.js";
import { requestTarget } from "./target.js";

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
  let headers: Record<string, string | string[]>;
  const source = response.headers;
  if (source instanceof HeaderMap) headers = source.toNodeHeaders();
  else {
    headers = {};
    source.forEach((v, k) => {
      if (k !== "set-cookie") headers[k] = v;
    });
    const cookies = source.getSetCookie();
    if (cookies.length) headers["set-cookie"] = cookies;
  }
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
  const disconnect = new ClientDisconnect();
  res.once("close", () => {
    if (!res.writableFinished) disconnect.abort(new Error("client disconnected"));
  });
  const method = req.method ?? "GET";
  let response: Response;
  try {
    const target = requestTarget(req.headers.host, req.url ?? "/");
    const headers = HeaderMap.fromRawHeaders(req.rawHeaders);
    if (target.authority !== undefined) headers.set("host", target.authority);
    const rawBody = method === "GET" || method === "HEAD" ? undefined : await readBody(req, opts.maxBodyBytes);
    const request = new IncomingRequest(method, target.url, headers, rawBody, disconnect);
    response = await gateway.fetch(request, { remoteAddress: req.socket.remoteAddress });
  } catch (err) {
    response = errorToResponse(err, { mcp: false, requestId: randomUUID() });
  }
  if (res.destroyed) {
    discardBody(response);
    return;
  }
  try {
    await writeResponse(res, response);
  } catch (err) {
    // Headers Node refuses to write (an upstream's control characters, say): never a crash.
    discardBody(response);
    if (res.headersSent) res.destroy(err as Error);
    else {
      const fallback = errorToResponse(new GatewayError("bad_response", 502, "The response could not be sent."), { mcp: false, requestId: randomUUID() });
      await writeResponse(res, fallback).catch(() => res.destroy());
    }
  }
}

function discardBody(response: Response): void {
  const nodeBody = untouchedNodeBody(response);
  if (nodeBody) nodeBody.destroy();
  else void response.body?.cancel().catch(() => {});
}
