/**
 * Built-in modules: what `$import(@zuplo/runtime)` and `$import(@zuplo/runtime/mcp-gateway)`
 * resolve to. Each entry carries its zod options schema (checked at start-up, with the JSON path
 * of every problem) and a factory that builds the policy or handler once.
 */
import type { z } from "zod";
import type { GatewayServices } from "../pipeline/services.js";
import type { Handler, InboundPolicy, OutboundPolicy, PolicyConfig, RouteConfig } from "../pipeline/types.js";

/** The two built-in module specifiers of the project format. */
export const RUNTIME_MODULE = "@zuplo/runtime";
export const MCP_GATEWAY_MODULE = "@zuplo/runtime/mcp-gateway";

/** What a factory gets at build time. */
export interface BuildInit {
  /** The policy's `name` (or the handler's route operationId). */
  name: string;
  services: GatewayServices;
  /** Every route of the project (for policies that serve per-route metadata). */
  routes: RouteConfig[];
  /** Routes that reference this policy (empty for handlers). */
  usedBy: RouteConfig[];
  /** Every policy of the project (e.g. to find the route's inbound auth policy). */
  policies: PolicyConfig[];
}

/** A project function named inside a built-in's options (`{ module, export }`). */
export interface OptionModuleRef {
  /** JSON path of the `{ module, export }` object inside the options. */
  path: Array<string | number>;
  module: string;
  export: string;
  /** Receives the loaded function (before the built-in is created). */
  bind(fn: (...args: never[]) => unknown): void;
}

interface Common<O> {
  /** Export name, e.g. `McpProxyHandler`. */
  exportName: string;
  /** Module specifiers under which the export is available. */
  modules: string[];
  optionsSchema: z.ZodType<O>;
  /** True for features gated by compatibilityDate >= 2026-03-01. */
  mcpFeature: boolean;
  /** Project functions the validated options name; loaded like custom policies at project load. */
  moduleRefs?(options: O): OptionModuleRef[];
}

export interface BuiltinInbound<O = unknown> extends Common<O> {
  kind: "inbound";
  /** The `policyType` string this export implements (several types may share one export). */
  policyTypes: string[];
  /** Marks policies that authenticate the caller (token exchange must come after one). */
  authenticates?: boolean;
  create(options: O, init: BuildInit): InboundPolicy | Promise<InboundPolicy>;
}

export interface BuiltinOutbound<O = unknown> extends Common<O> {
  kind: "outbound";
  policyTypes: string[];
  create(options: O, init: BuildInit): OutboundPolicy | Promise<OutboundPolicy>;
}

export interface BuiltinHandler<O = unknown> extends Common<O> {
  kind: "handler";
  /** True when the handler speaks MCP (JSON-RPC error bodies). */
  mcp: boolean;
  create(options: O, init: BuildInit): Handler | Promise<Handler>;
}

export type Builtin = BuiltinInbound<any> | BuiltinOutbound<any> | BuiltinHandler<any>;

const registry = new Map<string, Builtin>();

/** Registers a built-in export. Called by each policy/handler module's `index.ts`. */
export function registerBuiltin(b: Builtin): void {
  registry.set(b.exportName, b);
}

/** Looks up a built-in by module specifier and export name. */
export function findBuiltin(module: string, exportName: string): Builtin | undefined {
  const b = registry.get(exportName);
  return b && b.modules.includes(module) ? b : undefined;
}

/** Finds the built-in implementing a policyType (for error messages and rule checks). */
export function builtinForPolicyType(policyType: string): Builtin | undefined {
  for (const b of registry.values()) {
    if (b.kind !== "handler" && b.policyTypes.includes(policyType)) return b;
  }
  return undefined;
}

/** Every registered export name under a module (for "did you mean" errors). */
export function builtinExports(module: string): string[] {
  return [...registry.values()].filter((b) => b.modules.includes(module)).map((b) => b.exportName);
}
