/**
 * The contract of the benchmark's helper processes (upstream, bare proxy): listen on a free
 * loopback port, print `{"port": N}` on stdout once listening, and exit cleanly on SIGTERM.
 */
import type http from "node:http";

/** Listens on 127.0.0.1 port 0, reports the port on stdout and closes every connection on SIGTERM. */
export function serveAsChild(server: http.Server): void {
  server.listen(0, "127.0.0.1", () => {
    const addr = server.address();
    process.stdout.write(`${JSON.stringify({ port: typeof addr === "object" && addr ? addr.port : 0 })}\n`);
  });
  process.on("SIGTERM", () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
