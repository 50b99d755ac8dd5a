/**
 * MCP-aware metrics, derived from audit events: requests and capability calls by route, MCP
 * method, capability and outcome; gateway and upstream time; open streams; upstream token
 * refreshes; connect flows; store latency.
 *
 * Like the request metrics in `metrics.ts`, hot-path counts go into plain maps and typed arrays
 * and are handed to prom-client when the registry is read (a scrape), so a request costs a few
 * map lookups instead of prom-client's label hashing.
 *
 * Label values are bounded: MCP methods outside the spec's list count as `other`, and a
 * capability name only becomes a label once the upstream listed it in a `tools/list` or
 * `prompts/list` answer seen by the gateway (others count as `other`). The per-capability
 * latency histogram, whose series cost a dozen buckets each, names only the first
 * {@link MAX_TIMED_NAMES} of them per route and kind.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { BucketHistogram } from "../metric-buckets.js";
import { AuditEvents, type AuditEvent } from "./events.js";

const MCP_METHODS = new Set([
  "initialize", "ping", "tools/list", "tools/call", "prompts/list", "prompts/get", "resources/list", "resources/read",
  "resources/templates/list", "resources/subscribe", "resources/unsubscribe", "completion/complete", "logging/setLevel",
  "tasks/get", "tasks/list", "tasks/result", "tasks/cancel",
]);
/** Names remembered per route and list kind; beyond this, new names count as `other`. */
const MAX_NAMES = 1000;
/** Names with their own series in the capability latency histogram, per route and list kind. */
export const MAX_TIMED_NAMES = 100;
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30];
/** Fewer, coarser buckets for the per-capability histogram (tool calls take milliseconds to minutes). */
const CAPABILITY_BUCKETS = [0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];

/** Counts by label tuple between scrapes. */
class PendingCounter {
  readonly #counts = new Map<string, { labels: Record<string, string>; n: number }>();
  constructor(readonly counter: Counter<string>) {}
  add(key: string, labels: () => Record<string, string>): void {
    if (!this.addKnown(key)) this.#counts.set(key, { labels: labels(), n: 1 });
  }
  /** Counts one for `key` if it was seen before; false (nothing counted) when not. */
  addKnown(key: string): boolean {
    const c = this.#counts.get(key);
    if (!c) return false;
    c.n++;
    return true;
  }
  flush(): void {
    for (const c of this.#counts.values()) {
      if (c.n > 0) this.counter.inc(c.labels, c.n);
      c.n = 0;
    }
  }
}

export interface McpMetrics {
  /** Feeds one audit event (registered as an audit listener). */
  observe(event: AuditEvent): void;
  /** Remembers capability names an upstream listed (`tools/list`, `prompts/list`) on a route. */
  learn(route: string, kind: "tool" | "prompt", names: readonly string[]): void;
  streamOpened(route: string): void;
  streamClosed(route: string): void;
  /** Records one store operation's duration. */
  storeOperation(op: string, seconds: number, failed: boolean): void;
}

const mcpMethodLabel = (m: string | undefined) => (m === undefined ? "none" : MCP_METHODS.has(m) ? m : "other");

/** Registers the MCP metric families on `registry`. */
export function createMcpMetrics(registry: Registry): McpMetrics {
  const known = new Map<string, Set<string>>();
  const timed = new Map<string, Set<string>>();
  const streams = new Map<string, number>();
  const requests: PendingCounter = new PendingCounter(
    new Counter({
      name: "tollgate_mcp_requests_total",
      help: "MCP HTTP requests by route, JSON-RPC method (batch for several), event (accepted/rejected) and outcome",
      labelNames: ["route", "mcp_method", "event", "outcome"],
      registers: [registry],
      collect: (): void => requests.flush(),
    }),
  );
  const calls: PendingCounter = new PendingCounter(
    new Counter({
      name: "tollgate_mcp_capability_calls_total",
      help: "Capability calls (tools/call, prompts/get, resources/read) by route, method, capability and outcome",
      labelNames: ["route", "mcp_method", "capability", "outcome"],
      registers: [registry],
      collect: (): void => calls.flush(),
    }),
  );
  const duration = new BucketHistogram(
    "tollgate_mcp_duration_seconds",
    "Time of MCP requests and capability calls split into gateway and upstream parts",
    ["route", "mcp_method", "part"],
    DURATION_BUCKETS,
    registry,
  );
  const capabilityDuration = new BucketHistogram(
    "tollgate_mcp_capability_duration_seconds",
    "Time of capability calls by route, method, capability and part: gateway (its own time before the answer) or upstream (the rest, to that call's answer)",
    ["route", "mcp_method", "capability", "part"],
    CAPABILITY_BUCKETS,
    registry,
  );
  new Gauge({
    name: "tollgate_mcp_open_streams",
    help: "SSE answers currently streaming through the gateway, by route",
    labelNames: ["route"],
    registers: [registry],
    collect() {
      for (const [route, n] of streams) this.set({ route }, n);
    },
  });
  const refreshes = new Counter({
    name: "tollgate_upstream_token_refreshes_total",
    help: "Upstream token refreshes by upstream and result (ok, failed, coalesced into one in flight)",
    labelNames: ["upstream", "result"],
    registers: [registry],
  });
  const flows = new Counter({
    name: "tollgate_upstream_connect_flows_total",
    help: "Upstream connect flows by upstream and stage (started, completed, failed)",
    labelNames: ["upstream", "stage"],
    registers: [registry],
  });
  const reconsents = new Counter({
    name: "tollgate_upstream_connections_lost_total",
    help: "Upstream connections removed, by upstream and reason (revoked by the user or an admin, reconsent required)",
    labelNames: ["upstream", "reason"],
    registers: [registry],
  });
  const store = new BucketHistogram(
    "tollgate_store_operation_duration_seconds",
    "Store operation latency by operation and result",
    ["operation", "result"],
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registry,
  );

  function capabilityLabel(route: string, method: string | undefined, name: string | undefined): string {
    if (name === undefined) return "none";
    const kind = method === "tools/call" ? "tool" : method === "prompts/get" ? "prompt" : undefined;
    return kind !== undefined && known.get(`${route}\u0000${kind}`)?.has(name) ? name : "other";
  }

  function timedLabel(route: string, method: string | undefined, capability: string): string {
    if (capability === "none" || capability === "other") return capability;
    const kind = method === "tools/call" ? "tool" : "prompt";
    return timed.get(`${route}\u0000${kind}`)?.has(capability) ? capability : "other";
  }

  function timing(route: string, method: string, e: AuditEvent): void {
    // Label closures only for series not seen before: nothing is allocated for a known one.
    if (e.gatewayLatencyMs !== undefined) {
      const key = `${route}\u0000${method}\u0000g`;
      const v = e.gatewayLatencyMs / 1000;
      if (!duration.observeKnown(key, v)) duration.observe(key, () => ({ route, mcp_method: method, part: "gateway" }), v);
    }
    if (e.upstreamLatencyMs !== undefined) {
      const key = `${route}\u0000${method}\u0000u`;
      const v = e.upstreamLatencyMs / 1000;
      if (!duration.observeKnown(key, v)) duration.observe(key, () => ({ route, mcp_method: method, part: "upstream" }), v);
    }
  }

  return {
    observe(e) {
      const upstream = e.upstreamServerId ?? "unknown";
      switch (e.event) {
        case AuditEvents.requestAccepted:
        case AuditEvents.requestRejected: {
          const route = e.operationId ?? "unknown";
          const method = e.mcpMethod === "batch" ? "batch" : mcpMethodLabel(e.mcpMethod);
          const event = e.event === AuditEvents.requestAccepted ? "accepted" : "rejected";
          const outcome = e.outcome ?? "success";
          const key = `${route}\u0000${method}\u0000${event}\u0000${outcome}`;
          if (!requests.addKnown(key)) requests.add(key, () => ({ route, mcp_method: method, event, outcome }));
          timing(route, method, e);
          return;
        }
        case AuditEvents.capabilityCompleted: {
          const route = e.operationId ?? "unknown";
          const method = mcpMethodLabel(e.mcpMethod);
          const capability = capabilityLabel(route, e.mcpMethod, e.capabilityName);
          const outcome = e.outcome ?? "success";
          const callKey = `${route}\u0000${method}\u0000${capability}\u0000${outcome}`;
          if (!calls.addKnown(callKey)) calls.add(callKey, () => ({ route, mcp_method: method, capability, outcome }));
          const name = timedLabel(route, e.mcpMethod, capability);
          const key = `${route}\u0000${method}\u0000${name}`;
          if (e.gatewayLatencyMs !== undefined) {
            const k = `${key}\u0000g`;
            const v = e.gatewayLatencyMs / 1000;
            if (!capabilityDuration.observeKnown(k, v)) capabilityDuration.observe(k, () => ({ route, mcp_method: method, capability: name, part: "gateway" }), v);
          }
          if (e.upstreamLatencyMs !== undefined) {
            const k = `${key}\u0000u`;
            const v = e.upstreamLatencyMs / 1000;
            if (!capabilityDuration.observeKnown(k, v)) capabilityDuration.observe(k, () => ({ route, mcp_method: method, capability: name, part: "upstream" }), v);
          }
          return;
        }
        case AuditEvents.upstreamConnectionRefreshed:
          return refreshes.inc({ upstream, result: "ok" });
        case AuditEvents.upstreamRefreshFailed:
          return refreshes.inc({ upstream, result: "failed" });
        case AuditEvents.upstreamRefreshCoalesced:
          return refreshes.inc({ upstream, result: "coalesced" });
        case AuditEvents.upstreamConnectStarted:
          return flows.inc({ upstream, stage: "started" });
        case AuditEvents.upstreamConnectionEstablished:
          return flows.inc({ upstream, stage: "completed" });
        case AuditEvents.upstreamConnectFailed:
          return flows.inc({ upstream, stage: "failed" });
        case AuditEvents.upstreamConnectionRevoked:
          return reconsents.inc({ upstream, reason: "revoked" });
        case AuditEvents.upstreamReconsentRequired:
          return reconsents.inc({ upstream, reason: "reconsent_required" });
      }
    },
    learn(route, kind, names) {
      const key = `${route}\u0000${kind}`;
      let set = known.get(key);
      if (!set) known.set(key, (set = new Set()));
      let t = timed.get(key);
      if (!t) timed.set(key, (t = new Set()));
      for (const n of names) {
        if (set.size >= MAX_NAMES) break;
        set.add(n);
        if (t.size < MAX_TIMED_NAMES) t.add(n);
      }
    },
    streamOpened(route) {
      streams.set(route, (streams.get(route) ?? 0) + 1);
    },
    streamClosed(route) {
      streams.set(route, (streams.get(route) ?? 1) - 1);
    },
    storeOperation(op, seconds, failed) {
      store.observe(`${op}\u0000${failed ? 1 : 0}`, () => ({ operation: op, result: failed ? "error" : "ok" }), seconds);
    },
  };
}
