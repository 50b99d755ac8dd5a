/**
 * Gateway-wide services handed to every policy and handler at build time and per request.
 * Built once by the CLI (or a test) from the environment; nothing below `src/cli/` reads
 * `process.env` directly.
 */
import type { Dispatcher } from "undici";
import type { Logger } from "../log.js";
import type { Store } from "../store/types.js";
import type { SecretBox } from "../store/crypto.js";
import type { SystemRoutes } from "../routing/system-routes.js";
import type { GatewayMetrics } from "../metrics.js";
import type { Audit } from "../audit/audit.js";
import type { McpMetrics } from "../audit/metrics.js";
import type { Tracing } from "../tracing/index.js";

export interface GatewaySettings {
  /** The origin clients and browsers use, e.g. `https://gw.example.com` (no trailing slash). */
  publicUrl: string;
  /** Prefix of the gateway's own endpoints, default `/__tollgate`. */
  basePath: string;
  /** `TOLLGATE_DEV_LOGIN=1`: the loopback-only dev login page is enabled. */
  devLogin: boolean;
  /** Subjects treated as administrators (`TOLLGATE_ADMIN_SUBJECTS`). */
  adminSubjects: string[];
  /** Claim (in `request.user.data`) whose value(s) mark an admin, with the accepted values. */
  adminClaim: { name: string; values: string[] } | undefined;
  /** Hosts allowed as upstream-supplied URL targets even when private (SSRF guard). */
  allowedUpstreamHosts: string[];
  /** `production` refuses unsafe defaults (e.g. no encryption key). */
  mode: "development" | "production";
  /** Largest request body the gateway buffers, in bytes. */
  maxBodyBytes: number;
  /** Most messages in one JSON-RPC batch on MCP routes (`TOLLGATE_MAX_BATCH_MESSAGES`). */
  maxBatchMessages: number;
  /** Largest JSON-RPC batch body on MCP routes, in bytes (`TOLLGATE_MAX_BATCH_BYTES`). */
  maxBatchBytes: number;
}

export interface GatewayServices {
  settings: GatewaySettings;
  log: Logger;
  store: Store;
  secrets: SecretBox;
  /** Shared keep-alive dispatcher for upstream hops. */
  dispatcher: Dispatcher;
  /** The gateway's own endpoints (well-known documents, connect pages, OAuth server). */
  systemRoutes: SystemRoutes;
  /** Prometheus metrics (`/metrics`). */
  metrics?: GatewayMetrics;
  /** Audit trail (structured events, optional sinks); see docs/observability.md. */
  audit?: Audit;
  /** MCP-aware metrics fed by the audit trail and the proxy. */
  mcpMetrics?: McpMetrics;
  /** OpenTelemetry traces, when the `OTEL_*` settings turn them on (docs/observability.md). */
  tracing?: Tracing;
  /** Milliseconds since epoch; injectable for expiry tests. */
  now(): number;
  /** Environment as loaded (process env + project `.env`), for `$env` and `${env.X}`. */
  env: Record<string, string | undefined>;
}
