/**
 * Lingering close: when the gateway answers before it has read the request body (401 before an
 * upload, 413 in the middle of one), the connection cannot be reused, and closing it at once
 * while the client is still sending makes the kernel answer the client's next bytes with a TCP
 * reset — which often destroys the answer before the client has read it. So the gateway sends
 * the answer with `Connection: close`, shuts down its sending side, and reads and discards what
 * the client still sends for a bounded time before closing, as nginx does.
 *
 * @see https://nginx.org/en/docs/http/ngx_http_core_module.html#lingering_close
 * @see https://www.rfc-editor.org/rfc/rfc9112#section-9.6 tear-down
 */
import type http from "node:http";
import type net from "node:net";

export interface LingerLimits {
  /** Longest time unread bytes are discarded after the answer. */
  lingerMs: number;
  /** Longest pause in them before closing. */
  lingerIdleMs: number;
}

/**
 * Marks the response as the connection's last and makes the connection linger after it instead
 * of being destroyed. Call before the response's head is written.
 */
export function closeAfterResponse(req: http.IncomingMessage, res: http.ServerResponse, limits: LingerLimits): void {
  res.setHeader("connection", "close");
  const socket = req.socket as net.Socket & { destroySoon?: () => void };
  // Node ends a `Connection: close` response with socket.destroySoon(): end, then destroy as soon
  // as the last byte is written — with the client's unread bytes still arriving.
  socket.destroySoon = () => linger(socket, req, limits);
}

function linger(socket: net.Socket, req: http.IncomingMessage, limits: LingerLimits): void {
  if (socket.destroyed) return;
  socket.end();
  const total = setTimeout(() => socket.destroy(), limits.lingerMs);
  socket.setTimeout(limits.lingerIdleMs, () => socket.destroy());
  socket.once("end", () => socket.destroy());
  socket.once("close", () => clearTimeout(total));
  // The request's remaining body flows through the HTTP parser and is dropped.
  req.removeAllListeners("data");
  req.resume();
  socket.resume();
}
