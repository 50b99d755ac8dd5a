/**
 * The metrics listener (`TOLLGATE_METRICS_PORT`, loopback unless `TOLLGATE_METRICS_HOST` says
 * otherwise): `GET /metrics` in the Prometheus text format and `GET /healthz`, nothing else.
 * Kept apart from the public listener so scrapes need no token and never reach the internet.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { metricsResponse, type GatewayMetrics } from "../metrics.js";

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** Starts the listener; rejects when the address is taken. */
export async function startMetricsServer(metrics: GatewayMetrics, host: string, port: number): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
      return;
    }
    if (path !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    // The same exposition as everywhere else (summed over cluster workers when there are several).
    metricsResponse(metrics)
      .then(async (r) => {
        const text = await r.text();
        res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "text/plain", "cache-control": "no-store" });
        res.end(req.method === "HEAD" ? undefined : text);
      })
      .catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shown}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
