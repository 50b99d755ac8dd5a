/**
 * Prometheus metrics at `/metrics`. One registry per gateway process; counters are updated on
 * the request path with label values from a small, fixed set (route operationId, status class).
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface GatewayMetrics {
  registry: Registry;
  requests: Counter<"route" | "method" | "status">;
  duration: Histogram<"route">;
  /** Upstream OAuth events: connected, refreshed, refresh_failed, reconsent, revoked. */
  oauthEvents: Counter<"upstream" | "event">;
}

/** Creates the metrics registry with Node's default process metrics. */
export function createMetrics(): GatewayMetrics {
  const registry = new Registry();
  // Event-loop lag sampled every 100 ms rather than the default 10 ms: the 10 ms sampler alone
  // costs ~6 ms of CPU per second on an idle gateway (measured), i.e. ~12 µs per request at 500/s.
  collectDefaultMetrics({ register: registry, prefix: "tollgate_", eventLoopMonitoringPrecision: 100 });
  return {
    registry,
    requests: new Counter({
      name: "tollgate_requests_total",
      help: "Requests handled, by route operationId, method and status code",
      labelNames: ["route", "method", "status"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: "tollgate_request_duration_seconds",
      help: "Time until the response head is ready (streams excluded), by route",
      labelNames: ["route"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry],
    }),
    oauthEvents: new Counter({
      name: "tollgate_upstream_oauth_events_total",
      help: "Upstream OAuth grant events by upstream id",
      labelNames: ["upstream", "event"],
      registers: [registry],
    }),
  };
}

/** Renders the registry in the Prometheus text format. */
export async function metricsResponse(m: GatewayMetrics): Promise<Response> {
  return new Response(await m.registry.metrics(), {
    headers: { "content-type": m.registry.contentType, "cache-control": "no-store" },
  });
}
