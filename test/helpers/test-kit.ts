/**
 * Test-only builders for the policy tests: gateway services over a MemoryStore and a
 * hand-assembled {@link Project} whose policies are built-ins with validated options.
 * Only tests import this file.
 */
import { randomBytes } from "node:crypto";
import { Agent } from "undici";
import { silentLogger } from "../../src/log.js";
import type { GatewayServices, GatewaySettings } from "../../src/pipeline/services.js";
import type { Handler } from "../../src/pipeline/types.js";
import type { Project, ResolvedPolicy, ResolvedRoute } from "../../src/project/types.js";
import { SystemRoutes } from "../../src/routing/system-routes.js";
import { createSecretBox } from "../../src/store/crypto.js";
import { MemoryStore } from "../../src/store/memory.js";
import type { Store } from "../../src/store/types.js";
import { createGateway, type Gateway } from "../../src/gateway.js";
import { findBuiltin, RUNTIME_MODULE, MCP_GATEWAY_MODULE } from "../../src/policies/registry.js";

/** A mutable clock for expiry tests. */
export interface TestClock {
  now(): number;
  advance(ms: number): void;
  set(ms: number): void;
}

export function testClock(start = Date.now()): TestClock {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms), set: (ms) => void (t = ms) };
}

/** Services for in-process tests; `close()` releases the dispatcher and store. */
export function testServices(
  opts: { clock?: TestClock; store?: Store; settings?: Partial<GatewaySettings> } = {},
): GatewayServices & { close(): Promise<void> } {
  const clock = opts.clock ?? testClock();
  const store = opts.store ?? new MemoryStore({ now: clock.now });
  const dispatcher = new Agent();
  const settings: GatewaySettings = {
    publicUrl: "http://gw.test",
    basePath: "/__tollgate",
    devLogin: false,
    adminSubjects: [],
    adminClaim: undefined,
    allowedUpstreamHosts: [],
    mode: "development",
    maxBodyBytes: 1024 * 1024,
    maxBatchMessages: 100,
    maxBatchBytes: 1024 * 1024,
    ...opts.settings,
  };
  return {
    settings,
    log: silentLogger,
    store,
    secrets: createSecretBox([{ id: "k1", key: randomBytes(32) }]),
    dispatcher,
    systemRoutes: new SystemRoutes(),
    now: clock.now,
    env: {},
    async close() {
      await dispatcher.close();
      await store.close();
    },
  };
}

/** A policy entry: the export name of a built-in plus its raw (unvalidated) options. */
export interface TestPolicy {
  name: string;
  exportName: string;
  options: unknown;
}

/** A route entry; `handler` defaults to an echo handler answering JSON about the request. */
export interface TestRoute {
  path: string;
  methods?: string[];
  operationId?: string;
  mcp?: boolean;
  inbound: string[];
  handler?: Handler;
}

/** Echoes what reached the handler: user, headers, upstream headers. */
export const echoHandler: Handler = async (request, context) =>
  Response.json({
    user: request.user ?? null,
    headers: Object.fromEntries(request.headers),
    upstreamHeaders: { ...context.upstreamHeaders },
  });

/** Builds a Project from built-in policies, validating options with each schema (throws on error). */
export function testProject(policies: TestPolicy[], routes: TestRoute[]): Project {
  const map = new Map<string, ResolvedPolicy>();
  for (const p of policies) {
    const builtin = findBuiltin(RUNTIME_MODULE, p.exportName) ?? findBuiltin(MCP_GATEWAY_MODULE, p.exportName);
    if (!builtin || builtin.kind !== "inbound") throw new Error(`no built-in inbound policy ${p.exportName}`);
    const options = builtin.optionsSchema.parse(p.options);
    map.set(p.name, {
      name: p.name,
      policyType: builtin.policyTypes[0]!,
      handler: { module: builtin.modules[0]!, export: p.exportName, options: p.options as Record<string, unknown> },
      impl: "builtin",
      builtin,
      options,
    });
  }
  const resolved: ResolvedRoute[] = routes.map((r, i) => ({
    path: r.path,
    methods: r.methods ?? ["GET", "POST"],
    operationId: r.operationId ?? `route-${i}`,
    corsPolicy: undefined,
    handler: { module: "./test", export: "handler", options: {} },
    policies: { inbound: r.inbound, outbound: [] },
    mcp: r.mcp ?? false,
    handlerImpl: "custom",
    fn: r.handler ?? echoHandler,
    handlerOptions: {},
  }));
  return { dir: "/nonexistent", compatibilityDate: "2026-03-01", routes: resolved, policies: map, corsPolicies: new Map(), env: {}, warnings: [] };
}

/** createGateway over testProject + testServices; close() closes both. */
export async function testGateway(
  policies: TestPolicy[],
  routes: TestRoute[],
  opts: Parameters<typeof testServices>[0] = {},
): Promise<{ gateway: Gateway; services: ReturnType<typeof testServices>; close(): Promise<void> }> {
  const services = testServices(opts);
  const gateway = await createGateway(testProject(policies, routes), services);
  return {
    gateway,
    services,
    async close() {
      await gateway.close();
      await services.close();
    },
  };
}
