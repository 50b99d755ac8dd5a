/**
 * Audit event names and fields. Names and fields follow the hosted MCP gateway's documented
 * analytics (`mcp_request_*`, `mcp_capability_*`, `mcp_auth_*`), so queries and dashboards
 * written for it carry over; events it does not document (disconnect, refresh, reconsent,
 * connect flows) are named in the same style. See docs/observability.md for the full list.
 *
 * Tool arguments and results are never part of an event: only names, ids, codes and timings.
 */

/** How one MCP request or capability call ended. */
export type Outcome = "success" | "failure" | "denied" | "application_error" | "connect_required" | "partial" | "cancelled";

/** Who caused a failure. */
export type FailureOrigin = "gateway" | "upstream" | "client";

export const AuditEvents = {
  requestAccepted: "mcp_request_accepted",
  requestRejected: "mcp_request_rejected",
  capabilityInvoked: "mcp_capability_invoked",
  capabilityCompleted: "mcp_capability_completed",
  downstreamTokenIssued: "mcp_auth_downstream_token_issued",
  downstreamTokenValidated: "mcp_auth_downstream_token_validated",
  downstreamTokenRevoked: "mcp_auth_downstream_token_revoked",
  consentApproved: "mcp_auth_consent_approved",
  consentDenied: "mcp_auth_consent_denied",
  upstreamConnectStarted: "mcp_auth_upstream_connect_started",
  upstreamConnectFailed: "mcp_auth_upstream_connect_failed",
  upstreamConnectionEstablished: "mcp_auth_upstream_connection_established",
  upstreamConnectionRefreshed: "mcp_auth_upstream_connection_refreshed",
  upstreamRefreshFailed: "mcp_auth_upstream_refresh_failed",
  upstreamRefreshCoalesced: "mcp_auth_upstream_refresh_coalesced",
  upstreamReconsentRequired: "mcp_auth_upstream_reconsent_required",
  upstreamConnectionRevoked: "mcp_auth_upstream_connection_revoked",
} as const;

export type AuditEventName = (typeof AuditEvents)[keyof typeof AuditEvents];

/**
 * One audit event: a flat object of scalars, written as one log line (plus the optional sink).
 * Field names are the documented dimensions; absent fields are left out.
 */
export interface AuditEvent {
  event: AuditEventName;
  /** Route operationId. */
  operationId?: string;
  upstreamServerId?: string;
  subjectId?: string;
  clientName?: string;
  httpMethod?: string;
  transport?: string;
  mcpMethod?: string;
  capabilityName?: string;
  outcome?: Outcome;
  reasonCode?: string;
  failureOrigin?: FailureOrigin;
  /** JSON-RPC error code of the answer, when it was an error. */
  errorCode?: number;
  /** HTTP status of the answer. */
  status?: number;
  latencyMs?: number;
  gatewayLatencyMs?: number;
  upstreamLatencyMs?: number;
  requestId?: string;
  traceId?: string;
  spanId?: string;
  [field: string]: string | number | boolean | undefined;
}
