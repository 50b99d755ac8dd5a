/** Small Node `http` helpers shared by the demo upstream servers. */
import type http from "node:http";

const MAX_BODY = 1024 * 1024;

/** Reads a request body (at most 1 MiB). */
export async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error("request body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Wraps body HTML into a complete page. */
export function htmlDocument(body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo upstream</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>${body}</body></html>`;
}

/** Sends a small self-contained HTML page. */
export function sendHtml(res: http.ServerResponse, status: number, body: string): void {
  const html = htmlDocument(body);
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
  });
  res.end(html);
}

/** Sends a JSON document. */
export function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
  res.end(JSON.stringify(body));
}

/** Listens on `host:port` (0 = any free port) and returns the bound port. */
export function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? addr.port : port);
    });
  });
}

/** Closes a server, dropping idle and active connections. */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Formats a URL host for IPv6 literals. */
export function hostForUrl(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
