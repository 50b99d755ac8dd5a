/**
 * OpenTelemetry traces, off unless the standard `OTEL_*` variables ask for them. This module
 * never imports the SDK: {@link tracingFromEnv} loads `./sdk.ts` with a dynamic import only when
 * tracing is on, so with tracing off the request path pays one `undefined` check.
 *
 * @see https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/
 * @see https://www.w3.org/TR/trace-context/
 */
import type { Span } from "@opentelemetry/api";

export type { Span };

/** Attribute values the gateway puts on spans (never tokens, codes, arguments or results). */
export type SpanAttributes = Record<string, string | number | boolean | undefined>;

/** Reads a request header (web `Headers` or the Node adapter's). */
export interface HeaderSource {
  get(name: string): string | null;
}

export interface Tracing {
  /** The server span of one request; an incoming W3C `traceparent` (and `tracestate`) is its parent. */
  startRequest(name: string, headers: HeaderSource, attributes: SpanAttributes): Span;
  /** Starts a child of `parent` (default: the current span, see {@link within}). */
  start(name: string, kind: "internal" | "client", attributes?: SpanAttributes, parent?: Span): Span;
  /** Runs `fn` with `span` current: spans started inside (also after awaits) are its children. */
  within<T>(span: Span, fn: () => T): T;
  /** Runs `fn` in a child span of the current one, ended with `fn`'s outcome. */
  trace<T>(name: string, kind: "internal" | "client", attributes: SpanAttributes, fn: () => Promise<T>): Promise<T>;
  /** Writes `traceparent` (and `tracestate`) of `span` into outgoing `headers`. */
  inject(span: Span, headers: Record<string, string>): void;
  /** Marks `span` failed with `err` (only its class and code are recorded, not its message). */
  fail(span: Span, err: unknown): void;
  /** Exports what is buffered. */
  forceFlush(): Promise<void>;
  /** Flushes and stops the exporter (graceful shutdown). */
  shutdown(): Promise<void>;
}

type Env = Record<string, string | undefined>;

/** Whether the standard variables turn tracing on: an OTLP endpoint or `OTEL_TRACES_EXPORTER=otlp`. */
export function tracingEnabled(env: Env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? "").split(",").map((s) => s.trim().toLowerCase());
  if (exporters.includes("none")) return false;
  if (exporters.includes("otlp")) return true;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/**
 * Starts the SDK when the environment asks for it (each process — each worker — its own);
 * `undefined` otherwise, without loading any OpenTelemetry package.
 */
export async function tracingFromEnv(env: Env, info: { serviceVersion?: string } = {}): Promise<Tracing | undefined> {
  if (!tracingEnabled(env)) return undefined;
  const { startTracing } = await import("./sdk.js");
  return startTracing(env, info);
}

/**
 * Runs `fn` (which may answer synchronously) inside `span` and ends the span when it settles;
 * a thrown error or rejection marks the span failed. With `httpStatus`, the answer's HTTP status
 * is recorded on the span (`http.response.status_code`) and a 5xx marks it failed too.
 */
export function runInSpan<T>(tracing: Tracing, span: Span, fn: () => T | Promise<T>, httpStatus?: (answer: T) => number): T | Promise<T> {
  const settle = (v: T): T => {
    if (httpStatus) {
      const status = httpStatus(v);
      span.setAttribute("http.response.status_code", status);
      if (status >= 500) tracing.fail(span, { name: String(status) });
    }
    span.end();
    return v;
  };
  let out: T | Promise<T>;
  try {
    out = tracing.within(span, fn);
  } catch (err) {
    tracing.fail(span, err);
    span.end();
    throw err;
  }
  if (typeof (out as { then?: unknown } | null)?.then !== "function") return settle(out as T);
  return (out as Promise<T>).then(
    settle,
    (err: unknown) => {
      tracing.fail(span, err);
      span.end();
      throw err;
    },
  );
}
