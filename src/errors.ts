/**
 * Runtime errors and the one place they become HTTP responses.
 *
 * Two kinds of errors exist in Tollgate: configuration mistakes (thrown at start-up as
 * {@link ConfigError} lists, see `src/project/`) and runtime failures, which are
 * {@link GatewayError}s with a stable string `code`, an HTTP status and an optional cause.
 * Clients get a safe message; logs get the cause.
 */

/** A runtime failure with a stable machine-readable code. */
export class GatewayError extends Error {
  readonly code: string;
  readonly status: number;
  readonly headers: Record<string, string> | undefined;
  /** Extra members for the problem+json body / JSON-RPC error `data`. Must be safe to show. */
  readonly details: Record<string, unknown> | undefined;
  /** When set, MCP routes answer a JSON-RPC error with this code (HTTP 200) instead of problem+json. */
  readonly rpcCode: number | undefined;
  /** HTTP status of that JSON-RPC answer when not 200 (e.g. 413 for a batch over the limits). */
  readonly rpcStatus: number | undefined;

  constructor(
    code: string,
    status: number,
    message: string,
    opts: {
      cause?: unknown;
      headers?: Record<string, string>;
      details?: Record<string, unknown>;
      rpcCode?: number;
      rpcStatus?: number;
    } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "GatewayError";
    this.code = code;
    this.status = status;
    this.headers = opts.headers;
    this.details = opts.details;
    this.rpcCode = opts.rpcCode;
    this.rpcStatus = opts.rpcStatus;
  }
}

/** Seconds a client is told to wait (`Retry-After`) when the store is unavailable. */
export const STORE_RETRY_AFTER_SECONDS = 5;

/**
 * The gateway's store (SQLite file, PostgreSQL) failed or did not answer within its timeout:
 * 503 with `Retry-After` — problem+json on HTTP routes and pages, a JSON-RPC error carrying the
 * request's id (HTTP 503) on MCP routes. Nothing about the cause reaches the client; the log
 * gets it. The store backends throw it (see `src/store/outage.ts`) and recover by themselves.
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-15.6.4 503 Service Unavailable
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3 Retry-After
 */
export class StoreUnavailableError extends GatewayError {
  constructor(cause: unknown) {
    super("store_unavailable", 503, "The gateway's data store is unavailable; try again shortly.", {
      cause,
      headers: { "retry-after": String(STORE_RETRY_AFTER_SECONDS) },
      rpcCode: RpcCode.ServerError,
      rpcStatus: 503,
    });
    this.name = "StoreUnavailableError";
  }
}

/** JSON-RPC error codes used by the gateway. */
export const RpcCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** Server error range: used for upstream/gateway failures. */
  ServerError: -32000,
  /** URL elicitation required (MCP 2025-11-25). */
  UrlElicitationRequired: -32042,
} as const;

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** Shape of the error → response mapping's input context. */
export interface ErrorResponseContext {
  /** True on routes whose handler speaks MCP (JSON-RPC errors instead of problem+json). */
  mcp: boolean;
  requestId: string;
  /** The JSON-RPC id of the request, when known (MCP routes). */
  rpcId?: string | number | null;
}

/**
 * The single mapping from any thrown value to a Response.
 * Unknown errors become a 500 whose body reveals nothing about the cause.
 * @see https://www.rfc-editor.org/rfc/rfc9457 Problem Details for HTTP APIs
 */
export function errorToResponse(err: unknown, ctx: ErrorResponseContext): Response {
  const ge =
    err instanceof GatewayError
      ? err
      : new GatewayError("internal_error", 500, "The gateway failed to handle this request.", {
          cause: err,
        });
  const headers = new Headers(ge.headers);
  headers.set("x-request-id", ctx.requestId);
  // Transport-level failures (auth challenges, timeouts, bad gateway) stay HTTP problems even on
  // MCP routes; only errors that carry a JSON-RPC code become a JSON-RPC error answered with 200.
  if (ctx.mcp && ge.rpcCode !== undefined) {
    headers.set("content-type", "application/json");
    const code = ge.rpcCode;
    const body = {
      jsonrpc: "2.0",
      id: ctx.rpcId ?? null,
      error: { code, message: ge.message, data: { code: ge.code, requestId: ctx.requestId, ...ge.details } },
    };
    return new Response(JSON.stringify(body), { status: ge.rpcStatus ?? 200, headers });
  }
  headers.set("content-type", "application/problem+json");
  const body = {
    // A URN: stable and machine-readable without pretending to be a page someone hosts.
    type: `urn:tollgate:error:${ge.code}`,
    title: TITLES[ge.status] ?? "Error",
    status: ge.status,
    detail: ge.message,
    code: ge.code,
    instance: ctx.requestId,
    ...ge.details,
  };
  return new Response(JSON.stringify(body), { status: ge.status, headers });
}
