/** The loaded, validated project: what `loadProject` returns and `createGateway` builds from. */
import type { Builtin } from "../policies/registry.js";
import type { McpGatewayPluginConfig } from "../routing/gateway-paths.js";
import type { Handler, InboundPolicy, OutboundPolicy, PolicyConfig, RouteConfig } from "../pipeline/types.js";

/** One configuration problem, located by file and JSON path. */
export interface ConfigIssue {
  /** Project-relative file, e.g. `config/policies.json`. */
  file: string;
  /** JSON path, e.g. `policies[2].handler.options.authMode` (empty for the whole file). */
  path: string;
  message: string;
}

/** Thrown by `loadProject` with every problem found. */
export class ProjectConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(issues.map((i) => `${i.file}${i.path ? `: ${i.path}` : ""}: ${i.message}`).join("\n"));
    this.name = "ProjectConfigError";
    this.issues = issues;
  }
}

/** A policy with its implementation resolved and its options validated. */
export type ResolvedPolicy = PolicyConfig &
  (
    | { impl: "builtin"; builtin: Builtin; options: unknown }
    | { impl: "custom"; fn: InboundPolicy | OutboundPolicy; options: unknown }
  );

/** A route with its handler resolved and its options validated. */
export type ResolvedRoute = RouteConfig &
  (
    | { handlerImpl: "builtin"; builtin: Builtin; handlerOptions: unknown }
    | { handlerImpl: "custom"; fn: Handler; handlerOptions: unknown }
  );

/** A CORS policy from `policies.json` `corsPolicies`. */
export interface CorsPolicyConfig {
  name: string;
  allowedOrigins: string[];
  allowedHeaders: string[];
  allowedMethods: string[];
  exposeHeaders: string[];
  maxAge: number | undefined;
  allowCredentials: boolean;
}

export interface Project {
  /** Absolute project directory. */
  dir: string;
  compatibilityDate: string;
  routes: ResolvedRoute[];
  policies: Map<string, ResolvedPolicy>;
  corsPolicies: Map<string, CorsPolicyConfig>;
  /** process environment merged over the project's `.env` (process wins). */
  env: Record<string, string | undefined>;
  /** Problems that do not stop the gateway (e.g. option keys a built-in ignores). */
  warnings: ConfigIssue[];
  /** `McpGatewayPlugin` registered in `modules/zuplo.runtime.ts`, if any (sets the base path). */
  mcpGateway?: McpGatewayPluginConfig | undefined;
}
