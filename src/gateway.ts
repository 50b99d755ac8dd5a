/**
 * The whole request path, top to bottom:
 *
 *   gateway endpoints? ─► route match ─► inbound policies ─► handler ─► outbound policies
 *                                                                    ─► response hooks ─► CORS
 *
 * Everything is built once from the validated project; a request only runs closures.
 * Errors from any step are mapped to a response in one place (`errorToResponse`).
 */
import { performance } from "node:perf_hooks";
import { newRequestId } from "./pipeline/request-id.js";
import { errorToResponse, GatewayError } from "./errors.js";
import { mcpRequestInfo } from "./mcp/messages.js";
import type { GatewayServices } from "./pipeline/services.js";
import {
  asGatewayRequest,
  GatewayRequest,
  IncomingRequest,
  UPSTREAM_SIGNAL,
  webRequestReady,
  type GatewayContext,
  type Handler,
  type InboundPolicy,
  type OutboundPolicy,
  type PipelineRequest,
  type ResponseSendingHook,
  type RouteConfig,
  type UpstreamAuthHooks,
  type UpstreamSignal,
} from "./pipeline/types.js";
import { logAccess, type Logger } from "./log.js";
import type { Project, ResolvedRoute } from "./project/types.js";
import type { BuildInit } from "./policies/registry.js";
import { compilePath, type PathMatcher } from "./routing/match.js";
import { chooseBasePath, collidingRoutes } from "./routing/gateway-paths.js";
import { registerRegistry } from "./registry/index.js";
import { registerHomePage } from "./web/home.js";
import { applyCors, preflight } from "./pipeline/cors.js";
import { observerFor, OBSERVATION, type McpObservation } from "./audit/index.js";
import { runInSpan, type Span, type Tracing } from "./tracing/index.js";

export interface FetchInfo {
  /** Address of the TCP peer. */
  remoteAddress?: string | undefined;
  /** The client's address when a trusted proxy named it; default `remoteAddress`. */
  clientAddress?: string | undefined;
  signal?: AbortSignal;
}

export interface Gateway {
  /** Runs one request: a web `Request`, or the Node adapter's cheaper {@link IncomingRequest}. */
  fetch(request: Request | IncomingRequest, info?: FetchInfo): Promise<Response>;
  readonly project: Project;
  readonly services: GatewayServices;
  /** Stops background work of policies (caches, timers). Does not close the store. */
  close(): Promise<void>;
}

const isPromise = <T>(v: T | Promise<T>): v is Promise<T> => typeof (v as { then?: unknown } | null)?.then === "function";

const NO_HEADERS: ReadonlySet<string> = new Set();
/** Inbound headers the MCP proxy never forwards anyway: no need to record them per request. */
const NEVER_FORWARDED = new Set(["authorization", "cookie"]);

const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
/** No routes at a path: what a miss in the table of static paths iterates. */
const NO_ROUTES: readonly BuiltRoute[] = [];

interface BuiltRoute {
  route: ResolvedRoute;
  matcher: PathMatcher;
  inbound: Array<{ name: string; fn: InboundPolicy; options: unknown }>;
  outbound: Array<{ name: string; fn: OutboundPolicy; options: unknown }>;
  handler: Handler;
  /**
   * Where project code first runs on the route (a custom policy or handler): it gets a real web
   * Request, so the pipeline reads the body and builds one just before the inbound policy with
   * this index (`inbound.length`: before the handler). Built-in policies before it — typically
   * authentication — run on the cheap request, before any body byte is read. -1 when the route
   * is made only of built-ins: it never builds one.
   */
  webFrom: number;
}

/** The per-request context. Methods live on the prototype: nothing is allocated per request but the object. */
class RequestContext implements GatewayContext {
  readonly custom: Record<string, unknown> = {};
  readonly upstreamHeaders: Record<string, string> = {};
  upstreamAuth: UpstreamAuthHooks | undefined = undefined;
  readonly hooks: ResponseSendingHook[] = [];
  readonly log: Logger;
  readonly [UPSTREAM_SIGNAL]: UpstreamSignal;
  readonly remoteAddress: string | undefined;
  readonly clientAddress: string | undefined;
  #credentialHeaders: Set<string> | undefined = undefined;
  /** What the audit trail learns about this request (MCP routes, when auditing). */
  [OBSERVATION]: McpObservation | undefined = undefined;
  constructor(
    readonly requestId: string,
    readonly route: RouteConfig,
    readonly services: GatewayServices,
    info: FetchInfo,
    upstreamSignal: UpstreamSignal,
    private readonly signalSource: { readonly signal: AbortSignal },
  ) {
    this.log = services.log;
    this[UPSTREAM_SIGNAL] = upstreamSignal;
    this.remoteAddress = info.remoteAddress;
    this.clientAddress = info.clientAddress ?? info.remoteAddress;
  }

  get signal(): AbortSignal {
    return this.signalSource.signal;
  }

  get credentialHeaders(): ReadonlySet<string> {
    return this.#credentialHeaders ?? NO_HEADERS;
  }

  consumeCredentialHeader(name: string): void {
    const key = name.toLowerCase();
    if (!NEVER_FORWARDED.has(key)) (this.#credentialHeaders ??= new Set()).add(key);
  }

  addResponseSendingHook(hook: ResponseSendingHook): void {
    this.hooks.push(hook);
  }

  waitUntil(promise: Promise<unknown>): void {
    promise.catch((err: unknown) => this.log.warn({ err, requestId: this.requestId }, "background task failed"));
  }
}

/**
 * The services of one gateway build: the base path of the gateway's endpoints is the project's
 * choice when it registers `McpGatewayPlugin` (see `routing/gateway-paths.ts`).
 */
function servicesForProject(project: Project, services: GatewayServices): GatewayServices {
  const basePath = chooseBasePath(project.mcpGateway, services.settings);
  const clash = collidingRoutes(basePath, project.routes.map((r) => r.path));
  if (clash.length) {
    throw new Error(
      `the route${clash.length > 1 ? "s" : ""} ${clash.join(", ")} collide${clash.length > 1 ? "" : "s"} with the gateway's ` +
        `endpoints under base path "${basePath || "/"}"; choose another TOLLGATE_BASE_PATH`,
    );
  }
  return basePath === services.settings.basePath ? services : { ...services, settings: { ...services.settings, basePath } };
}

/** Builds a gateway from a validated project. Policies are constructed here, once. */
export async function createGateway(project: Project, given: GatewayServices): Promise<Gateway> {
  const services = servicesForProject(project, given);
  const routes = project.routes;
  const policyConfigs = [...project.policies.values()];
  const built = new Map<string, { fn: InboundPolicy | OutboundPolicy; options: unknown }>();
  const closers: Array<() => unknown> = [];

  const initFor = (name: string, usedBy: ResolvedRoute[]): BuildInit => ({
    name,
    services,
    routes,
    usedBy,
    policies: policyConfigs,
  });

  for (const p of policyConfigs) {
    const usedBy = routes.filter((r) => r.policies.inbound.includes(p.name) || r.policies.outbound.includes(p.name));
    if (usedBy.length === 0) continue;
    if (p.impl === "builtin") {
      const fn = (await p.builtin.create(p.options as never, initFor(p.name, usedBy))) as InboundPolicy | OutboundPolicy;
      const close = (fn as { close?: () => unknown }).close;
      if (close) closers.push(close);
      built.set(p.name, { fn, options: p.options });
    } else {
      built.set(p.name, { fn: p.fn, options: p.options });
    }
  }

  const table: BuiltRoute[] = [];
  for (const route of routes) {
    const handler =
      route.handlerImpl === "builtin"
        ? ((await route.builtin.create(route.handlerOptions as never, initFor(route.operationId, [route]))) as Handler)
        : route.fn;
    const closeHandler = route.handlerImpl === "builtin" ? (handler as { close?: () => unknown }).close : undefined;
    if (closeHandler) closers.push(closeHandler);
    const pick = (names: string[]) =>
      names.map((name) => {
        const b = built.get(name)!;
        return { name, fn: b.fn as never, options: b.options };
      });
    const custom = (name: string) => project.policies.get(name)?.impl !== "builtin";
    const firstCustom = route.policies.inbound.findIndex(custom);
    const web = route.handlerImpl !== "builtin" || route.policies.outbound.some(custom);
    table.push({
      route,
      matcher: compilePath(route.path),
      inbound: pick(route.policies.inbound),
      outbound: pick(route.policies.outbound),
      handler,
      webFrom: firstCustom >= 0 ? firstCustom : web ? route.policies.inbound.length : -1,
    });
  }
  if (project.mcpGateway?.registry.enabled) registerRegistry(services, project, project.mcpGateway.registry.path);
  registerHomePage(services, project);
  const staticRoutes = new Map<string, BuiltRoute[]>();
  const paramRoutes: BuiltRoute[] = [];
  for (const b of table) {
    if (b.matcher.static) {
      const list = staticRoutes.get(b.route.path) ?? [];
      list.push(b);
      staticRoutes.set(b.route.path, list);
    } else paramRoutes.push(b);
  }

  function matchRoute(
    method: string,
    pathname: string,
  ): { built: BuiltRoute; params: Record<string, string> } | { allow: string[]; built: BuiltRoute } | undefined {
    let allowFrom: BuiltRoute | undefined;
    // Made only when a path matches but the method does not (a 405's Allow list).
    let allow: Set<string> | undefined;
    for (const b of staticRoutes.get(pathname) ?? NO_ROUTES) {
      if (b.route.methods.includes(method)) return { built: b, params: {} };
      allowFrom ??= b;
      allow ??= new Set();
      for (const m of b.route.methods) allow.add(m);
    }
    for (const b of paramRoutes) {
      const params = b.matcher.match(pathname);
      if (!params) continue;
      if (b.route.methods.includes(method)) return { built: b, params };
      allowFrom ??= b;
      allow ??= new Set();
      for (const m of b.route.methods) allow.add(m);
    }
    return allowFrom ? { allow: [...allow!], built: allowFrom } : undefined;
  }

  const observe = observerFor(services);

  // Not an async function: one that returns another's promise costs the caller extra microtasks.
  function fetch(input: Request | IncomingRequest, info: FetchInfo = {}): Promise<Response> {
    const tracing = services.tracing;
    if (!tracing) return serve(input, info, undefined);
    return tracedServe(tracing, input, info);
  }

  async function tracedServe(tracing: Tracing, input: Request | IncomingRequest, info: FetchInfo): Promise<Response> {
    const method = input.method.toUpperCase();
    const span = tracing.startRequest(method, input.headers, { "http.request.method": method });
    return runInSpan(tracing, span, () => serve(input, info, span), (response) => response.status);
  }

  async function serve(input: Request | IncomingRequest, info: FetchInfo, span: Span | undefined): Promise<Response> {
    const started = performance.now();
    const incoming = input instanceof IncomingRequest ? input : undefined;
    const method = input.method.toUpperCase();
    const given = input.headers.get("x-request-id");
    const requestId = given && REQUEST_ID_RE.test(given) ? given : newRequestId();
    let response: Response;
    let routeName = "-";
    let pathname = "-";
    /** An MCP request's observation writes its access line: the request's audit event. */
    let observed = false;
    /** When the route's answer was ready, if its observation took the time already. */
    let doneAt = 0;
    try {
      // The edge hands over a plain path (no query) without the URL being parsed; else parse it.
      let url: URL | undefined;
      const known = incoming?.path;
      if (known !== undefined) pathname = known;
      else {
        try {
          url = new URL(input.url);
        } catch {
          throw new GatewayError("bad_request", 400, "The request URL is not valid.");
        }
        pathname = url.pathname;
      }
      const sys = services.systemRoutes.match(method, pathname);
      if (sys && "handler" in sys) {
        routeName = "system";
        span?.updateName(`${method} system`);
        response = await sys.handler(await webRequestReady(input), {
          params: sys.params,
          requestId,
          services,
          remoteAddress: info.remoteAddress,
          clientAddress: info.clientAddress ?? info.remoteAddress,
        });
      } else if (!KNOWN_METHODS.has(method)) {
        throw new GatewayError("method_not_implemented", 501, `The gateway does not implement the ${method} method.`);
      } else {
        const m = matchRoute(method, pathname);
        if (!m && sys) {
          throw new GatewayError("method_not_allowed", 405, `${method} is not allowed here.`, {
            headers: { allow: sys.allow.join(", ") },
          });
        }
        if (!m) throw new GatewayError("route_not_found", 404, `No route matches ${pathname}.`);
        const cors = m.built.route.corsPolicy ? project.corsPolicies.get(m.built.route.corsPolicy) : undefined;
        if (method === "OPTIONS" && cors && input.headers.has("access-control-request-method")) {
          response = preflight(input, cors);
        } else if ("allow" in m) {
          throw new GatewayError("method_not_allowed", 405, `${method} is not allowed on ${pathname}.`, {
            headers: { allow: m.allow.join(", ") },
          });
        } else {
          routeName = m.built.route.operationId;
          if (span) span.updateName(`${method} ${routeName}`).setAttributes({ "http.route": m.built.route.path, "tollgate.route": routeName });
          let request: PipelineRequest = incoming ?? (input instanceof GatewayRequest ? input : new GatewayRequest(input as Request));
          request.params = m.params;
          request.query = url?.search ? Object.fromEntries(url.searchParams) : {};
          const signals: { readonly signal: AbortSignal } = info.signal ? (info as { signal: AbortSignal }) : request;
          const upstreamSignal = incoming ? incoming.disconnect : signals.signal;
          const context = new RequestContext(requestId, m.built.route, services, info, upstreamSignal, signals);
          if (observe && m.built.route.mcp) {
            const obs = (context[OBSERVATION] = observe(routeName, method, pathname, requestId, request, started, () => upstreamSignal.aborted));
            observed = true;
            if (span) {
              obs.traceId = span.spanContext().traceId;
              obs.spanId = span.spanContext().spanId;
            }
          }
          // The route's policies and handler, written out here rather than in a function of their
          // own: one async frame and one promise resolution less per request.
          const b = m.built;
          const tracing = services.tracing;
          let answer: Response | undefined;
          try {
            const webFrom = b.webFrom;
            for (let i = 0; i < b.inbound.length; i++) {
              const p = b.inbound[i]!;
              if (i === webFrom) request = await webRequestReady(request);
              // A policy that answers synchronously is not awaited: no microtask per policy.
              const given = request;
              let out = tracing
                ? runInSpan(tracing, tracing.start(`policy ${p.name}`, "internal", { "tollgate.policy": p.name }), () => p.fn(given, context, p.options, p.name))
                : p.fn(request, context, p.options, p.name);
              if (isPromise(out)) out = await out;
              // A policy that lets the request through mostly returns the one it was given.
              if (out !== given && out instanceof Response) {
                answer = out;
                break;
              }
              request = webFrom >= 0 && i >= webFrom ? asGatewayRequest(out as unknown as Request, request as GatewayRequest) : out;
            }
            if (answer === undefined) {
              if (webFrom === b.inbound.length) request = await webRequestReady(request);
              const given = request;
              answer = await (tracing
                ? runInSpan(tracing, tracing.start(`handler ${b.route.operationId}`, "internal", { "tollgate.route": b.route.operationId }), () => b.handler(given, context))
                : b.handler(request, context));
            } else if (webFrom >= 0 && b.outbound.length > 0) request = await webRequestReady(request);
            for (const p of b.outbound) answer = await p.fn(answer, request, context, p.options, p.name);
            for (const h of context.hooks) answer = await h(answer, request, context);
          } catch (err) {
            const status = err instanceof GatewayError ? err.status : 500;
            const fields = { err, requestId, route: routeName };
            if (status >= 500) services.log.error(fields, "request failed");
            else services.log.info(fields, "request failed");
            context[OBSERVATION]?.failed(err);
            if (b.route.mcp && err instanceof GatewayError && err.rpcCode !== undefined && context.custom.rpcId === undefined && request.method === "POST") {
              // A JSON-RPC error answer names the request's id (a body that cannot be read leaves it null).
              await mcpRequestInfo(request, context).catch(() => undefined);
            }
            answer = errorToResponse(err, { mcp: b.route.mcp, requestId, rpcId: context.custom.rpcId as never });
          }
          // Never throws; a failure is logged and the request keeps its access line. Its time is
          // the request's too: one clock read for both.
          const obs = context[OBSERVATION];
          if (obs !== undefined) void obs.finish(answer, request, (doneAt = performance.now()));
          response = cors ? applyCors(input, answer, cors) : answer;
        }
      }
    } catch (err) {
      if (!(err instanceof GatewayError) || err.status >= 500) services.log.error({ err, requestId }, "request failed");
      response = errorToResponse(err, { mcp: false, requestId });
    }
    if (!response.headers.has("x-request-id")) {
      try {
        response.headers.set("x-request-id", requestId);
      } catch {
        // immutable headers (e.g. a Response.redirect) — leave as is
      }
    }
    const ms = (doneAt || performance.now()) - started;
    // Only known methods become label values: any other word would add a time series per word.
    services.metrics?.record(routeName, KNOWN_METHODS.has(method) ? method : "other", response.status, ms / 1000);
    if (!observed) logAccess(services.log, { requestId, method, path: pathname, route: routeName, status: response.status, ms });
    return response;
  }

  return {
    fetch,
    project,
    services,
    async close() {
      for (const c of closers) await c();
    },
  };
}
