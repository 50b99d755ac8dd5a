/**
 * The whole request path, top to bottom:
 *
 *   gateway endpoints? ─► route match ─► inbound policies ─► handler ─► outbound policies
 *                                                                    ─► response hooks ─► CORS
 *
 * Everything is built once from the validated project; a request only runs closures.
 * Errors from any step are mapped to a response in one place (`errorToResponse`).
 */
import { randomUUID } from "node:crypto";
import { errorToResponse, GatewayError } from "./errors.js";
import type { GatewayServices } from "./pipeline/services.js";
import {
  asGatewayRequest,
  GatewayRequest,
  type GatewayContext,
  type Handler,
  type InboundPolicy,
  type OutboundPolicy,
  type ResponseSendingHook,
} from "./pipeline/types.js";
import type { Project, ResolvedRoute } from "./project/types.js";
import type { BuildInit } from "./policies/registry.js";
import { compilePath, type PathMatcher } from "./routing/match.js";
import { applyCors, preflight } from "./pipeline/cors.js";

export interface FetchInfo {
  remoteAddress?: string | undefined;
  signal?: AbortSignal;
}

export interface Gateway {
  fetch(request: Request, info?: FetchInfo): Promise<Response>;
  readonly project: Project;
  readonly services: GatewayServices;
  /** Stops background work of policies (caches, timers). Does not close the store. */
  close(): Promise<void>;
}

const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

interface BuiltRoute {
  route: ResolvedRoute;
  matcher: PathMatcher;
  inbound: Array<{ name: string; fn: InboundPolicy; options: unknown }>;
  outbound: Array<{ name: string; fn: OutboundPolicy; options: unknown }>;
  handler: Handler;
}

/** Builds a gateway from a validated project. Policies are constructed here, once. */
export async function createGateway(project: Project, services: GatewayServices): Promise<Gateway> {
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
    table.push({
      route,
      matcher: compilePath(route.path),
      inbound: pick(route.policies.inbound),
      outbound: pick(route.policies.outbound),
      handler,
    });
  }
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
    const allow = new Set<string>();
    for (const b of staticRoutes.get(pathname) ?? []) {
      if (b.route.methods.includes(method)) return { built: b, params: {} };
      allowFrom ??= b;
      b.route.methods.forEach((m) => allow.add(m));
    }
    for (const b of paramRoutes) {
      const params = b.matcher.match(pathname);
      if (!params) continue;
      if (b.route.methods.includes(method)) return { built: b, params };
      allowFrom ??= b;
      b.route.methods.forEach((m) => allow.add(m));
    }
    return allowFrom ? { allow: [...allow], built: allowFrom } : undefined;
  }

  async function runRoute(
    b: BuiltRoute,
    request: GatewayRequest,
    requestId: string,
    signal: AbortSignal,
    remoteAddress?: string,
  ): Promise<Response> {
    const hooks: ResponseSendingHook[] = [];
    const background: Array<Promise<unknown>> = [];
    const context: GatewayContext = {
      requestId,
      log: services.log,
      route: b.route,
      custom: {},
      signal,
      services,
      remoteAddress,
      upstreamHeaders: {},
      upstreamAuth: undefined,
      addResponseSendingHook: (h) => void hooks.push(h),
      waitUntil: (p) => void background.push(p.catch((err) => services.log.warn({ err, requestId }, "background task failed"))),
    };
    let response: Response | undefined;
    try {
      for (const p of b.inbound) {
        const out = await p.fn(request, context, p.options, p.name);
        if (out instanceof Response) {
          response = out;
          break;
        }
        request = asGatewayRequest(out, request);
      }
      response ??= await b.handler(request, context);
      for (const p of b.outbound) response = await p.fn(response, request, context, p.options, p.name);
      for (const h of hooks) response = await h(response, request, context);
    } catch (err) {
      const status = err instanceof GatewayError ? err.status : 500;
      const logFn = status >= 500 ? services.log.error.bind(services.log) : services.log.info.bind(services.log);
      logFn({ err, requestId, route: b.route.operationId }, "request failed");
      response = errorToResponse(err, { mcp: b.route.mcp, requestId, rpcId: context.custom.rpcId as never });
    }
    return response;
  }

  async function fetch(input: Request, info: FetchInfo = {}): Promise<Response> {
    const started = performance.now();
    const url = new URL(input.url);
    const method = input.method.toUpperCase();
    const given = input.headers.get("x-request-id");
    const requestId = given && REQUEST_ID_RE.test(given) ? given : randomUUID();
    let response: Response;
    let routeName = "-";
    try {
      const sys = services.systemRoutes.match(method, url.pathname);
      if (sys && "handler" in sys) {
        routeName = "system";
        response = await sys.handler(input, {
          params: sys.params,
          requestId,
          services,
          remoteAddress: info.remoteAddress,
        });
      } else if (!KNOWN_METHODS.has(method)) {
        throw new GatewayError("method_not_implemented", 501, `The gateway does not implement the ${method} method.`);
      } else {
        const m = matchRoute(method, url.pathname);
        if (!m && sys) {
          throw new GatewayError("method_not_allowed", 405, `${method} is not allowed here.`, {
            headers: { allow: sys.allow.join(", ") },
          });
        }
        if (!m) throw new GatewayError("route_not_found", 404, `No route matches ${url.pathname}.`);
        const cors = m.built.route.corsPolicy ? project.corsPolicies.get(m.built.route.corsPolicy) : undefined;
        if (method === "OPTIONS" && cors && input.headers.has("access-control-request-method")) {
          response = preflight(input, cors);
        } else if ("allow" in m) {
          throw new GatewayError("method_not_allowed", 405, `${method} is not allowed on ${url.pathname}.`, {
            headers: { allow: m.allow.join(", ") },
          });
        } else {
          routeName = m.built.route.operationId;
          const request =
            input instanceof GatewayRequest ? input : new GatewayRequest(input);
          request.params = m.params;
          request.query = Object.fromEntries(url.searchParams);
          response = await runRoute(m.built, request, requestId, info.signal ?? input.signal, info.remoteAddress);
          if (cors) response = applyCors(input, response, cors);
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
    const ms = performance.now() - started;
    services.metrics?.requests.inc({ route: routeName, method, status: response.status });
    services.metrics?.duration.observe({ route: routeName }, ms / 1000);
    services.log.info({ requestId, method, path: url.pathname, route: routeName, status: response.status, ms: +ms.toFixed(2) }, "request");
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
