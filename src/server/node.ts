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

/** The one `close` listener of a response: it tells the client-abort signal and the body forwarder. */
interface ResponseClose {
  onClose: (() => void) | undefined;
}

/**
 * Forwards a body into the response and settles once the response is closed. An error on either
 * side destroys the other: a failing upstream body aborts the client's response (never a silently
 * truncated one), a client that goes away aborts the upstream body. Backpressure pauses the body
 * until the client's socket drains. Hand-rolled rather than `stream.pipeline` (an AbortController
 * and a DOMException per call) or `pipe` (about eight listeners added and removed per response).
 */
function forwardBody(body: Readable, res: http.ServerResponse, close: ResponseClose): Promise<void> {
  return new Promise((resolve) => {
    close.onClose = () => {
      if (!body.readableEnded && !body.destroyed) body.destroy();
      resolve();
    };
    if (res.destroyed) {
      close.onClose();
      return;
    }
    body.on("data", (chunk: Uint8Array) => {
      if (!res.write(chunk)) {
        body.pause();
        res.once("drain", () => body.resume());
      }
    });
    body.once("end", () => res.end());
    body.once("error", (err) => res.destroy(err));
  });
}

/** Writes a web Response to a Node ServerResponse, streaming the body. */
async function writeResponse(res: http.ServerResponse, response: Response, close: ResponseClose): Promise<void> {
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
  await forwardBody(nodeBody ?? Readable.fromWeb(response.body as never), res, close);
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
  const close: ResponseClose = { onClose: undefined };
  res.once("close", () => {
    if (!res.writableFinished) disconnect.abort(new Error("client disconnected"));
    close.onClose?.();
  });
  const method = req.method ?? "GET";
  const host = req.headers.host ?? "localhost";
  let response: Response;
  try {
    const rawBody = method === "GET" || method === "HEAD" ? undefined : await readBody(req, opts.maxBodyBytes);
    const request = new IncomingRequest(method, `http://${host}${req.url ?? "/"}`, HeaderMap.fromRawHeaders(req.rawHeaders), rawBody, disconnect);
    response = await gateway.fetch(request, { remoteAddress: req.socket.remoteAddress });
  } catch (err) {
    response = errorToResponse(err, { mcp: false, requestId: randomUUID() });
  }
  if (res.destroyed) {
    discardBody(response);
    return;
  }
  try {
    await writeResponse(res, response, close);
  } catch (err) {
    // Headers Node refuses to write (an upstream's control characters, say): never a crash.
    discardBody(response);
    if (res.headersSent) res.destroy(err as Error);
    else {
      const fallback = errorToResponse(new GatewayError("bad_response", 502, "The response could not be sent."), { mcp: false, requestId: randomUUID() });
      await writeResponse(res, fallback, close).catch(() => res.destroy());
    }
  }
}

function discardBody(response: Response): void {
  const nodeBody = untouchedNodeBody(response);
  if (nodeBody) nodeBody.destroy();
  else void response.body?.cancel().catch(() => {});
}
