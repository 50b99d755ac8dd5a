/**
 * Audit trail, MCP metrics and the `/metrics` exposure, from the environment:
 *
 * - `TOLLGATE_AUDIT_SINK`: `store`, `webhook` or both (comma-separated); default none (logs only).
 * - `TOLLGATE_AUDIT_RETENTION_DAYS`: how long the store sink keeps events (default 30).
 * - `TOLLGATE_AUDIT_WEBHOOK_URL` / `TOLLGATE_AUDIT_WEBHOOK_TOKEN`: the webhook sink's target.
 * - `TOLLGATE_METRICS_PORT` / `TOLLGATE_METRICS_HOST`: a separate metrics listener (host
 *   default `127.0.0.1`); `TOLLGATE_METRICS_TOKEN`: `/metrics` on the public listener, behind
 *   `Authorization: Bearer <token>`. Without the token `/metrics` is not on the public listener.
 */
import { timingSafeEqual, createHash } from "node:crypto";
import type { Logger } from "../log.js";
import { createAudit, createMcpMetrics, type Audit, type AuditSink, type McpMetrics } from "../audit/index.js";
import { StoreAuditSink } from "../audit/store-sink.js";
import { TimedStore } from "../audit/store-timing.js";
import { WebhookAuditSink } from "../audit/webhook-sink.js";
import { metricsResponse, type GatewayMetrics } from "../metrics.js";
import type { SystemRoutes } from "../routing/system-routes.js";
import type { Store } from "../store/types.js";
import { EnvConfigError, type Env } from "./services.js";

export interface MetricsExposure {
  /** Separate listener, when `TOLLGATE_METRICS_PORT` is set. */
  listener: { host: string; port: number } | undefined;
  /** Bearer token guarding `/metrics` on the public listener. */
  token: string | undefined;
}

/** Reads the metrics settings. */
export function metricsExposureFromEnv(env: Env): MetricsExposure {
  const portText = env.TOLLGATE_METRICS_PORT?.trim();
  let listener: MetricsExposure["listener"];
  if (portText) {
    const port = Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new EnvConfigError(`TOLLGATE_METRICS_PORT must be a port number, got "${portText}"`);
    listener = { host: env.TOLLGATE_METRICS_HOST?.trim() || "127.0.0.1", port };
  }
  const token = env.TOLLGATE_METRICS_TOKEN?.trim() || undefined;
  if (token !== undefined && token.length < 16) throw new EnvConfigError("TOLLGATE_METRICS_TOKEN must be at least 16 characters");
  return { listener, token };
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Registers `/metrics` on the public listener behind the bearer token (only when one is set). */
export function registerPublicMetrics(routes: SystemRoutes, metrics: GatewayMetrics, token: string | undefined): void {
  if (token === undefined) return;
  const expected = digest(`Bearer ${token}`);
  routes.add(["GET"], "/metrics", (request) => {
    const given = request.headers.get("authorization") ?? "";
    if (!timingSafeEqual(digest(given), expected)) {
      return new Response(null, { status: 401, headers: { "www-authenticate": 'Bearer realm="metrics"', "cache-control": "no-store" } });
    }
    return metricsResponse(metrics);
  });
}

/** Builds the audit trail (with its sinks) and the MCP metrics; returns the store to use (timed). */
export function observabilityFromEnv(
  env: Env,
  deps: { log: Logger; store: Store; metrics: GatewayMetrics },
): { audit: Audit | undefined; mcpMetrics: McpMetrics | undefined; store: Store } {
  const switched = (env.TOLLGATE_AUDIT ?? "").trim().toLowerCase();
  if (switched !== "" && switched !== "on" && switched !== "off") throw new EnvConfigError(`TOLLGATE_AUDIT must be on or off, not "${env.TOLLGATE_AUDIT}"`);
  // Off: no per-request MCP observation, audit sinks or MCP metrics (to measure what they cost,
  // or where another layer audits). Connection and token events are still written as log lines.
  if (switched === "off") {
    if (env.TOLLGATE_AUDIT_SINK?.trim()) throw new EnvConfigError("TOLLGATE_AUDIT_SINK is set but TOLLGATE_AUDIT=off turns the audit trail off");
    return { audit: undefined, mcpMetrics: undefined, store: deps.store };
  }
  const mcpMetrics = createMcpMetrics(deps.metrics.registry);
  const store = new TimedStore(deps.store, mcpMetrics);
  const sinks: AuditSink[] = [];
  const kinds = (env.TOLLGATE_AUDIT_SINK ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const kind of kinds) {
    if (kind === "store") {
      const days = Number(env.TOLLGATE_AUDIT_RETENTION_DAYS?.trim() || 30);
      if (!(days > 0)) throw new EnvConfigError("TOLLGATE_AUDIT_RETENTION_DAYS must be a positive number");
      sinks.push(new StoreAuditSink(deps.store, days, deps.log));
    } else if (kind === "webhook") {
      const url = env.TOLLGATE_AUDIT_WEBHOOK_URL?.trim();
      if (!url || !/^https?:\/\//.test(url)) throw new EnvConfigError("TOLLGATE_AUDIT_SINK=webhook needs TOLLGATE_AUDIT_WEBHOOK_URL (an http(s) URL)");
      sinks.push(new WebhookAuditSink({ url, token: env.TOLLGATE_AUDIT_WEBHOOK_TOKEN?.trim() || undefined, log: deps.log }));
    } else throw new EnvConfigError(`TOLLGATE_AUDIT_SINK: unknown sink "${kind}" (use store, webhook)`);
  }
  const audit = createAudit({ log: deps.log, sinks });
  audit.listen((e) => mcpMetrics.observe(e));
  return { audit, mcpMetrics, store };
}
