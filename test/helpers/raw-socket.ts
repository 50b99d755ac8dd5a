/**
 * A raw HTTP/1.1 client over one TCP socket, for tests that send what real clients never would:
 * a hostile `Host`, 1,500 header fields, a body that never ends. It writes bytes as given and
 * parses the first response (status line, fields, a `Content-Length` body).
 */
import net from "node:net";

export interface RawAnswer {
  status: number;
  /** Lower-cased field names; repeated fields joined with ", ". */
  headers: Record<string, string>;
  body: string;
}

export interface RawConnection {
  socket: net.Socket;
  /** Resolves with the first complete response; rejects if the connection fails before one arrived. */
  answer: Promise<RawAnswer>;
  /** Resolves when the socket is closed, with the error code if it ended in an error (e.g. ECONNRESET). */
  closed: Promise<string | undefined>;
  /** Writes bytes; resolves once they were handed to the kernel (false if the socket is gone). */
  write(data: string | Buffer): Promise<boolean>;
}

function parse(buf: Buffer): RawAnswer | undefined {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(lines[0]!.split(" ")[1]);
  if (status === 100) return parse(buf.subarray(end + 4));
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const body = buf.subarray(end + 4);
  if (/chunked/i.test(headers["transfer-encoding"] ?? "")) return dechunk(body, status, headers);
  const length = Number(headers["content-length"] ?? 0);
  if (body.length < length) return undefined;
  return { status, headers, body: body.subarray(0, length).toString("utf8") };
}

function dechunk(buf: Buffer, status: number, headers: Record<string, string>): RawAnswer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf("\r\n", at);
    if (eol < 0) return undefined;
    const size = parseInt(buf.subarray(at, eol).toString("latin1"), 16);
    if (size === 0) return { status, headers, body: Buffer.concat(parts).toString("utf8") };
    if (buf.length < eol + 2 + size + 2) return undefined;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** Opens a connection to `127.0.0.1:port`. */
export function rawConnect(port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    // Half-open: the gateway closing its side (FIN) does not stop this side from sending, as in TCP.
    const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    let received = Buffer.alloc(0);
    let settle: { ok: (a: RawAnswer) => void; fail: (e: Error) => void };
    let done = false;
    const answer = new Promise<RawAnswer>((ok, fail) => (settle = { ok, fail }));
    answer.catch(() => {});
    let closedWith: string | undefined;
    const closed = new Promise<string | undefined>((r) => socket.once("close", () => r(closedWith)));
    socket.on("data", (c: Buffer) => {
      if (done) return;
      received = Buffer.concat([received, c]);
      const a = parse(received);
      if (a) {
        done = true;
        settle.ok(a);
      }
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      closedWith = err.code ?? err.message;
    });
    socket.once("close", () => {
      if (!done) settle.fail(new Error(`connection closed before a response (${closedWith ?? "no error"})`));
    });
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve({
        socket,
        answer,
        closed,
        write: (data) =>
          new Promise((r) => {
            if (socket.destroyed || !socket.writable) return r(false);
            socket.write(data, (err) => r(!err));
          }),
      });
    });
    socket.once("error", reject);
  });
}

/** Sends one complete request and returns the response, then closes the socket. */
export async function rawExchange(port: number, request: string | Buffer): Promise<RawAnswer> {
  const c = await rawConnect(port);
  await c.write(request);
  try {
    return await c.answer;
  } finally {
    c.socket.destroy();
  }
}
