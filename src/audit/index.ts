/**
 * Audit trail and MCP metrics: events (`events.ts`), the trail itself (`audit.ts`), per-request
 * observation of MCP traffic (`observation.ts`, `rpc-tap.ts`), metrics derived from the events
 * (`metrics.ts`) and the sinks (`store-sink.ts`, `webhook-sink.ts`).
 */
import type { GatewayServices } from "../pipeline/services.js";
import type { PipelineRequest } from "../pipeline/types.js";
import { upstreamOAuthState } from "../oauth/registry.js";
import { McpObservation } from "./observation.js";

export { createAudit, type Audit, type AuditSink, type TimedAuditEvent } from "./audit.js";
export { AuditEvents, type AuditEvent, type AuditEventName, type Outcome, type FailureOrigin } from "./events.js";
export { createMcpMetrics, type McpMetrics } from "./metrics.js";
export { McpObservation, OBSERVATION, type ObservedContext } from "./observation.js";

export type StartObservation = (
  operationId: string,
  httpMethod: string,
  path: string,
  requestId: string,
  request: PipelineRequest,
  started: number,
  aborted: () => boolean,
) => McpObservation;

/**
 * The observation factory of one gateway, or undefined when nothing audits. Built after the
 * policies, so token-exchange routes map to their upstream ids.
 */
export function observerFor(services: GatewayServices): StartObservation | undefined {
  const audit = services.audit;
  if (!audit) return undefined;
  const upstreams = new Map<string, string>();
  for (const entry of upstreamOAuthState(services).upstreams.values()) {
    for (const op of entry.operationIds) upstreams.set(op, entry.id);
  }
  const deps = { audit, metrics: services.mcpMetrics, upstreamOf: (op: string) => upstreams.get(op) ?? op };
  return (operationId, httpMethod, path, requestId, request, started, aborted) =>
    new McpObservation(deps, operationId, httpMethod, path, requestId, request, started, aborted);
}
