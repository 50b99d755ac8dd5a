/**
 * The floor for a Node.js proxy on this machine: `node:http` in, `undici.request` on a keep-alive
 * pool out, headers copied (minus hop-by-hop and `Authorization`), body streamed back with
 * `pipe`. No routing, policies, web Request/Response objects or logging. Whatever Tollgate costs
 * above this is the price of its own machinery. Run as its own process by the benchmark.
 *
 * Usage: bare-proxy.ts <upstream origin> [workers]. Prints `{"port": N}` once listening. With
 * `workers` above 1 the same proxy runs in that many `node:cluster` workers behind one socket,
 * the way `tollgate start --workers N` shares its port: the floor for a gateway spread over
 * several processes on the same cores.
 */
import cluster from "node:cluster";
import http from "node:http";
import { Agent, request } from "undici";
import { serveAsChild } from "./child-server.js";

const upstream = process.argv[2] ?? "http://127.0.0.1:1";
const workers = Number(process.argv[3] ?? 1);

if (workers > 1 && cluster.isPrimary) {
  cluster.setupPrimary({ silent: true });
  const forked = Array.from({ length: workers }, () => cluster.fork());
  let listening = 0;
  cluster.on("listening", (_w, addr) => {
    if (++listening === workers) process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`);
  });
  process.on("SIGTERM", () => {
    for (const w of forked) w.process.kill("SIGTERM");
    cluster.on("exit", () => {
      if (forked.every((w) => w.isDead())) process.exit(0);
    });
  });
} else {
  // No connection cap: idle SSE streams hold their upstream connection for as long as they live.
  const agent = new Agent({ keepAliveTimeout: 30_000, pipelining: 1 });
  const DROP = new Set(["host", "connection", "keep-alive", "transfer-encoding", "authorization", "content-length"]);

  const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      const raw = req.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!.toLowerCase();
        if (!DROP.has(name)) headers[name] = raw[i + 1]!;
      }
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : Buffer.concat(chunks);
      request(`${upstream}${req.url ?? "/"}`, { dispatcher: agent, method: req.method as "POST", headers, body }).then(
        (up) => {
          const out: Record<string, string | string[]> = {};
          for (const k in up.headers) if (k !== "connection" && k !== "keep-alive" && k !== "transfer-encoding") out[k] = up.headers[k]!;
          res.writeHead(up.statusCode, out);
          if (out["content-length"] === undefined) res.flushHeaders();
          up.body.on("error", () => res.destroy());
          res.on("close", () => {
            if (!up.body.readableEnded) up.body.destroy();
          });
          up.body.pipe(res);
        },
        () => res.writeHead(502).end(),
      );
    });
  });

  serveAsChild(server);
}
