/**
 * The OpenTelemetry SDK behind {@link Tracing}: a tracer provider of its own (nothing global is
 * registered, so two gateways in one process do not share one), a batch span processor and the
 * OTLP/HTTP (JSON) exporter. The current span follows async work through an AsyncLocalStorage,
 * used only while tracing is on. Loaded only by `tracingFromEnv` when tracing is configured.
 *
 * @see https://opentelemetry.io/docs/specs/otel/trace/sdk/
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type TextMapGetter } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { HeaderSource, SpanAttributes, Tracing } from "./index.js";

type Env = Record<string, string | undefined>;

const propagator = new W3CTraceContextPropagator();
const headerGetter: TextMapGetter<HeaderSource> = {
  keys: () => [],
  get: (carrier, key) => carrier.get(key) ?? undefined,
};
const KINDS = { internal: SpanKind.INTERNAL, client: SpanKind.CLIENT } as const;

/** `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`. */
export function tracesEndpoint(env: Env): string | undefined {
  const own = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (own) return own;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  return base ? `${base.replace(/\/+$/, "")}/v1/traces` : undefined;
}

const positive = (text: string | undefined): number | undefined => {
  const n = Number(text?.trim());
  return text?.trim() && Number.isFinite(n) && n >= 0 ? n : undefined;
};

/** Starts the SDK for this process. */
export function startTracing(env: Env, info: { serviceVersion?: string }): Tracing {
  const exporter = new OTLPTraceExporter({ url: tracesEndpoint(env) });
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": env.OTEL_SERVICE_NAME?.trim() || "tollgate", "service.version": info.serviceVersion }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: [
      new BatchSpanProcessor(exporter, {
        scheduledDelayMillis: positive(env.OTEL_BSP_SCHEDULE_DELAY),
        maxQueueSize: positive(env.OTEL_BSP_MAX_QUEUE_SIZE),
        maxExportBatchSize: positive(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE),
        exportTimeoutMillis: positive(env.OTEL_BSP_EXPORT_TIMEOUT),
      }),
    ],
  });
  const tracer = provider.getTracer("tollgate", info.serviceVersion);
  const current = new AsyncLocalStorage<Span>();
  const parentContext = (parent: Span | undefined): Context => {
    const p = parent ?? current.getStore();
    return p ? trace.setSpan(ROOT_CONTEXT, p) : ROOT_CONTEXT;
  };
  const clean = (attributes: SpanAttributes | undefined) => {
    if (!attributes) return undefined;
    const out: Record<string, string | number | boolean> = {};
    for (const [k, v] of Object.entries(attributes)) if (v !== undefined) out[k] = v;
    return out;
  };
  const self: Tracing = {
    startRequest(name, headers, attributes) {
      const parent = propagator.extract(ROOT_CONTEXT, headers, headerGetter);
      return tracer.startSpan(name, { kind: SpanKind.SERVER, attributes: clean(attributes) }, parent);
    },
    start(name, kind, attributes, parent) {
      return tracer.startSpan(name, { kind: KINDS[kind], attributes: clean(attributes) }, parentContext(parent));
    },
    within(span, fn) {
      return current.run(span, fn);
    },
    async trace(name, kind, attributes, fn) {
      const span = self.start(name, kind, attributes);
      try {
        return await current.run(span, fn);
      } catch (err) {
        self.fail(span, err);
        throw err;
      } finally {
        span.end();
      }
    },
    inject(span, headers) {
      propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, {
        set: (carrier, key, value) => {
          carrier[key] = value;
        },
      });
    },
    fail(span, err) {
      const e = err as { name?: unknown; code?: unknown; status?: unknown } | undefined;
      const type = typeof e?.code === "string" ? e.code : typeof e?.name === "string" ? e.name : "Error";
      span.setAttribute("error.type", type);
      span.setStatus({ code: SpanStatusCode.ERROR });
    },
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
  return self;
}
