/**
 * MCP-aware metrics, derived from audit events: requests and capability calls by route, MCP
 * method, capability and outcome; gateway and upstream time; open streams; upstream token
 * refreshes; connect flows; store latency.
 *
 * Like the request metrics in `metrics.ts`, hot-path counts go into plain objects and typed
 * arrays and are handed to prom-client when the registry is read (a scrape). The counters and
 * series of a route, method and capability are found through nested maps from those label
 * values, so a request builds no key string and hashes no label set.
 *
 * Label values are bounded: MCP methods outside the spec's list count as `other`, and a
 * capability name only becomes a label once the upstream listed it in a `tools/list` or
 * `prompts/list` answer seen by the gateway (others count as `other`). The per-capability
 * latency histogram, whose series cost a dozen buckets each, names only the first
 * {@link MAX_TIMED_NAMES} of them per route and kind.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { BucketHistogram, type Series } from "../metric-buckets.js";
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

/** Counts of one label set between scrapes. */
interface CountCell {
  labels: Record<string, string>;
  n: number;
}

/** A counter whose counts wait in cells until a scrape hands them to prom-client. */
class PendingCounter {
  readonly #cells: CountCell[] = [];
  constructor(readonly counter: Counter<string>) {}
  /** A new cell for one label set (the caller keeps it and adds to `n`). */
  cell(labels: Record<string, string>): CountCell {
    const c = { labels, n: 0 };
    this.#cells.push(c);
    return c;
  }
  flush(): void {
    for (const c of this.#cells) {
      if (c.n > 0) this.counter.inc(c.labels, c.n);
      c.n = 0;
    }
  }
}

/** What requests of one route and MCP method count into. */
interface MethodCells {
  /** By outcome: `mcp_request_accepted`, `mcp_request_rejected`. */
  accepted: Map<string, CountCell>;
  rejected: Map<string, CountCell>;
  gateway: Series | undefined;
  upstream: Series | undefined;
}

/** What calls of one capability (its label value) on one route and method count into. */
interface CapabilityCells {
  /** By outcome. */
  calls: Map<string, CountCell>;
  /** Capability duration series, under the name's timed label (`other` beyond the budget). */
  gateway: Series | undefined;
  upstream: Series | undefined;
}

/** Capability names an upstream listed on a route: all (up to a bound) and those timed by name. */
interface ListedNames {
  known: Set<string>;
  timed: Set<string>;
}

/** One route's cells, and the capability names its upstream listed. */
interface RouteCells {
  methods: Map<string, MethodCells>;
  capabilities: Map<string, Map<string, CapabilityCells>>;
  tool: ListedNames;
  prompt: ListedNames;
}

/** Puts `value` in `map` at `key` and returns it (for `map.get(key) ?? put(map, key, new)`). */
function put<V>(map: Map<string, V>, key: string, value: V): V {
  map.set(key, value);
  return value;
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
  const streams = new Map<string, number>();
  const routes = new Map<string, RouteCells>();
  const listed = (): ListedNames => ({ known: new Set(), timed: new Set() });
  const routeCells = (route: string) => routes.get(route) ?? put(routes, route, { methods: new Map(), capabilities: new Map(), tool: listed(), prompt: listed() });
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
    return kind !== undefined && routeCells(route)[kind].known.has(name) ? name : "other";
  }

  function timedLabel(route: string, method: string | undefined, capability: string): string {
    if (capability === "none" || capability === "other") return capability;
    const kind = method === "tools/call" ? "tool" : "prompt";
    return routeCells(route)[kind].timed.has(capability) ? capability : "other";
  }

  /** The cells of a route and method label (made the first time). */
  function methodCells(route: string, method: string): MethodCells {
    const methods = routeCells(route).methods;
    return methods.get(method) ?? put(methods, method, { accepted: new Map(), rejected: new Map(), gateway: undefined, upstream: undefined });
  }

  /** The cells of a capability label on a route and method label (made the first time). */
  function capabilityCells(route: string, method: string, capability: string): CapabilityCells {
    const byMethod = routeCells(route).capabilities;
    const byName = byMethod.get(method) ?? put(byMethod, method, new Map<string, CapabilityCells>());
    return byName.get(capability) ?? put(byName, capability, { calls: new Map(), gateway: undefined, upstream: undefined });
  }

  /** A new series of `h` for a route, method label, part and (capability histogram) capability label. */
  function newSeries(h: BucketHistogram, part: "gateway" | "upstream", route: string, method: string, capability: string | undefined): Series {
    const labels: Record<string, string> = capability === undefined ? { route, mcp_method: method, part } : { route, mcp_method: method, capability, part };
    return h.series(Object.values(labels).join("\u0000"), () => labels);
  }

  return {
    observe(e) {
      const upstream = e.upstreamServerId ?? "unknown";
      switch (e.event) {
        case AuditEvents.requestAccepted:
        case AuditEvents.requestRejected: {
          const route = e.operationId ?? "unknown";
          const method = e.mcpMethod === "batch" ? "batch" : mcpMethodLabel(e.mcpMethod);
          const accepted = e.event === AuditEvents.requestAccepted;
          const outcome = e.outcome ?? "success";
          const cells = methodCells(route, method);
          const event = accepted ? "accepted" : "rejected";
          const byOutcome = accepted ? cells.accepted : cells.rejected;
          (byOutcome.get(outcome) ?? put(byOutcome, outcome, requests.cell({ route, mcp_method: method, event, outcome }))).n++;
          const g = e.gatewayLatencyMs;
          const u = e.upstreamLatencyMs;
          if (g !== undefined) duration.record((cells.gateway ??= newSeries(duration, "gateway", route, method, undefined)), g / 1000);
          if (u !== undefined) duration.record((cells.upstream ??= newSeries(duration, "upstream", route, method, undefined)), u / 1000);
          return;
        }
        case AuditEvents.capabilityCompleted: {
          const route = e.operationId ?? "unknown";
          const method = mcpMethodLabel(e.mcpMethod);
          const capability = capabilityLabel(route, e.mcpMethod, e.capabilityName);
          const outcome = e.outcome ?? "success";
          const cells = capabilityCells(route, method, capability);
          (cells.calls.get(outcome) ?? put(cells.calls, outcome, calls.cell({ route, mcp_method: method, capability, outcome }))).n++;
          // Its series are made under the name's timed label the first time (`other` past the
          // budget); that label never changes: a name is timed only if the timed set had room
          // when it was first listed, and the set never shrinks.
          const g = e.gatewayLatencyMs;
          const u = e.upstreamLatencyMs;
          const h = capabilityDuration;
          if (g !== undefined) h.record((cells.gateway ??= newSeries(h, "gateway", route, method, timedLabel(route, e.mcpMethod, capability))), g / 1000);
          if (u !== undefined) h.record((cells.upstream ??= newSeries(h, "upstream", route, method, timedLabel(route, e.mcpMethod, capability))), u / 1000);
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
      const { known, timed } = routeCells(route)[kind];
      for (const n of names) {
        if (known.size >= MAX_NAMES) break;
        known.add(n);
        if (timed.size < MAX_TIMED_NAMES) timed.add(n);
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
