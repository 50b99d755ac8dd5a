/**
 * The project's `modules/zuplo.runtime.ts`: its `runtimeInit(runtime)` runs once per load with a
 * stand-in for Zuplo's `RuntimeExtensions`. `runtime.addPlugin(new McpGatewayPlugin(options?))`
 * is understood (options validated here, with the file in the error); the runtime's other
 * extension points (request and response hooks, …) are reported as unsupported rather than
 * silently dropped.
 *
 * @see https://zuplo.com/docs/programmable-api/mcp-gateway-plugin
 * @see https://zuplo.com/docs/programmable-api/runtime-extensions
 */
import path from "node:path";
import { z } from "zod";
import {
  collidingRoutes,
  normalizeMountPath,
  registryShadowing,
  ZUPLO_BASE_PATH,
  type McpGatewayPluginConfig,
} from "../routing/gateway-paths.js";
import { findModuleFile, type ModuleResolver } from "./imports.js";
import { formatPath, formatZodIssue, type PathSegment } from "./issues.js";
import type { ConfigIssue } from "./types.js";

const RUNTIME_FILES = ["./modules/zuplo.runtime.ts", "./modules/zuplo.runtime.mts", "./modules/zuplo.runtime.js", "./modules/zuplo.runtime.mjs"];
const BRAND = Symbol.for("tollgate.McpGatewayPlugin");

const mountPath = z
  .string()
  .refine((s) => s.startsWith("/"), "must start with /")
  .refine((s) => !/[?#\s\\]|\/\/|(^|\/)\.\.?(\/|$)/.test(s), "must be a plain path (no query, fragment, spaces, // or dot segments)")
  .refine((s) => !/[{}:*]/.test(s), "must not contain route parameters or wildcards");

const pluginOptions = z
  .strictObject({
    basePath: mountPath.optional(),
    registry: z.strictObject({ enabled: z.boolean().optional(), path: mountPath.optional() }).optional(),
  })
  .optional();

/** What the project's runtime module contributed. */
export interface RuntimeInitResult {
  mcpGateway: McpGatewayPluginConfig | undefined;
}

function isPlugin(p: unknown): p is { options: unknown } {
  return typeof p === "object" && p !== null && (p as Record<symbol, unknown>)[BRAND] === true;
}

/**
 * Loads and runs `modules/zuplo.runtime.{ts,mts,js,mjs}` when present. `routePaths` are the
 * project's route paths, checked against the plugin's base path and registry mount.
 */
export async function loadRuntimeInit(
  dir: string,
  resolver: ModuleResolver,
  routes: Array<{ path: string; at: PathSegment[] }>,
  issues: ConfigIssue[],
): Promise<RuntimeInitResult> {
  const none: RuntimeInitResult = { mcpGateway: undefined };
  const file = RUNTIME_FILES.map((f) => findModuleFile(dir, f)).find((f) => f !== undefined);
  if (!file) return none;
  const rel = path.relative(dir, file).split(path.sep).join("/");
  const issue = (p: string, message: string) => issues.push({ file: rel, path: p, message });
  let mod: Record<string, unknown>;
  try {
    mod = await resolver.load(file);
  } catch (err) {
    issue("", `cannot load: ${(err as Error).message?.split("\n")[0] ?? String(err)}`);
    return none;
  }
  const init = mod.runtimeInit;
  if (typeof init !== "function") {
    issue("runtimeInit", "expected an exported function runtimeInit(runtime)");
    return none;
  }
  const plugins: Array<{ options: unknown }> = [];
  const runtime = new Proxy(
    {
      addPlugin(plugin: unknown) {
        if (isPlugin(plugin)) plugins.push(plugin);
        else issue("runtimeInit", "runtime.addPlugin: only McpGatewayPlugin from @zuplo/runtime/mcp-gateway is supported");
      },
    } as Record<string | symbol, unknown>,
    {
      get(target, prop) {
        if (prop in target || typeof prop === "symbol" || prop === "then") return target[prop];
        return () => issue("runtimeInit", `runtime.${prop} is not supported by Tollgate; remove the call (see docs/project-format.md)`);
      },
    },
  );
  try {
    await (init as (r: unknown) => unknown)(runtime);
  } catch (err) {
    issue("runtimeInit", `threw: ${(err as Error).message?.split("\n")[0] ?? String(err)}`);
    return none;
  }
  if (plugins.length === 0) return none;
  if (plugins.length > 1) issue("runtimeInit", "McpGatewayPlugin is added more than once; add it once");
  const parsed = pluginOptions.safeParse(plugins[0]!.options);
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      issue(formatPath(["McpGatewayPlugin", ...(i.path as PathSegment[])]), formatZodIssue(i, plugins[0]!.options, parsed.data));
    }
    return none;
  }
  const o = parsed.data ?? {};
  const basePath = normalizeMountPath(o.basePath ?? ZUPLO_BASE_PATH);
  const config: McpGatewayPluginConfig = {
    basePath,
    registry: { enabled: o.registry?.enabled ?? true, path: normalizeMountPath(o.registry?.path ?? `${basePath}/mcp-registry`) },
  };
  const paths = routes.map((r) => r.path);
  for (const p of collidingRoutes(basePath, paths)) {
    const at = routes.find((r) => r.path === p)!.at;
    issues.push({
      file: "config/routes.oas.json",
      path: formatPath(at.slice(0, 2)),
      message: `the route ${p} collides with the gateway's endpoints under basePath "${basePath || "/"}" (McpGatewayPlugin in ${rel})`,
    });
  }
  if (config.registry.enabled) {
    const why = registryShadowing(config.registry.path, basePath);
    if (why) issue("McpGatewayPlugin.registry.path", `"${config.registry.path || "/"}" cannot host the registry: ${why}`);
    for (const r of why ? [] : routes) {
      if (r.path === config.registry.path || r.path.startsWith(`${config.registry.path}/`)) {
        issues.push({
          file: "config/routes.oas.json",
          path: formatPath(r.at.slice(0, 2)),
          message: `the route ${r.path} collides with the MCP server registry at ${config.registry.path} (McpGatewayPlugin in ${rel}; set registry.path or registry.enabled: false)`,
        });
      }
    }
  }
  return { mcpGateway: config };
}
