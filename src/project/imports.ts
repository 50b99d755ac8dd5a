/**
 * `$import(...)` resolution: the two runtime specifiers map to built-in modules, `./…` paths
 * load the project's own TypeScript (or JavaScript) modules.
 */
import fs from "node:fs";
import Module, { register as registerHooks } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { randomUUID } from "node:crypto";
import { register, type NamespacedUnregister } from "tsx/esm/api";
import { builtinExports, findBuiltin, MCP_GATEWAY_MODULE, RUNTIME_MODULE, type Builtin } from "../policies/registry.js";
import { formatPath } from "./issues.js";
import type { RawRef } from "./files.js";
import type { ConfigIssue } from "./types.js";

const IMPORT = /^\$import\(\s*([^()]+?)\s*\)$/;
const BUILTIN_MODULES = [RUNTIME_MODULE, MCP_GATEWAY_MODULE];
const EXTENSIONS = [".ts", ".mts", ".js", ".mjs"];

/** Tollgate's stand-ins for the runtime packages, by specifier (see `runtime/`). */
const RUNTIME_ALIASES: Record<string, string> = {
  [RUNTIME_MODULE]: fileURLToPath(new URL("./runtime/runtime.cjs", import.meta.url)),
  [MCP_GATEWAY_MODULE]: fileURLToPath(new URL("./runtime/mcp-gateway.cjs", import.meta.url)),
};
let aliasesInstalled = false;

/**
 * Makes `import … from "@zuplo/runtime[/mcp-gateway]"` in project modules load Tollgate's
 * stand-ins, without the packages installed: a resolve hook for ES modules, and a
 * `Module._resolveFilename` wrapper for CommonJS (tsx compiles a project's TypeScript to
 * CommonJS unless its package.json says `"type": "module"`). Only these two exact specifiers
 * are touched. Once per process.
 * @see https://nodejs.org/docs/latest-v20.x/api/module.html#customization-hooks
 */
function installRuntimeAliases(): void {
  if (aliasesInstalled) return;
  aliasesInstalled = true;
  registerHooks(new URL("./runtime/hooks.mjs", import.meta.url));
  const m = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const original = m._resolveFilename;
  m._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
    return RUNTIME_ALIASES[request] ?? original.call(this, request, ...rest);
  };
}

/** What a `{ module, export }` pair resolved to. */
export type ResolvedRef =
  | { impl: "builtin"; module: string; builtin: Builtin }
  | { impl: "custom"; module: string; fn: (...args: never[]) => unknown };

/**
 * A project folder without `"type": "module"` makes TypeScript files load as CommonJS; their
 * ES exports then sit on `default` (marked `__esModule`). Use that object as the namespace.
 */
function interop(ns: Record<string, unknown>): Record<string, unknown> {
  const d = ns.default as Record<string, unknown> | undefined;
  if (d && typeof d === "object" && d.__esModule === true) return d;
  return ns;
}

/** Extracts the specifier from `$import(x)` (a bare `x` is accepted too). */
export function importSpecifier(module: string): string {
  const m = IMPORT.exec(module.trim());
  return m ? m[1]! : module.trim();
}

export function findModuleFile(dir: string, spec: string): string | undefined {
  const base = path.resolve(dir, spec);
  const candidates = path.extname(base)
    ? [base]
    : [...EXTENSIONS.map((e) => base + e), ...EXTENSIONS.map((e) => path.join(base, `index${e}`))];
  return candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile());
}

/**
 * Resolves module references of one project load. All project modules of a load share one tsx
 * namespace, so a file imported by two modules is evaluated once; every load gets a new
 * namespace, so `dev` reloads see edited files.
 */
export class ModuleResolver {
  private readonly cache = new Map<string, Promise<Record<string, unknown>>>();
  private loader: NamespacedUnregister | undefined;

  constructor(private readonly dir: string) {}

  private importFile(file: string): Promise<Record<string, unknown>> {
    installRuntimeAliases();
    this.loader ??= register({ namespace: `tollgate-${randomUUID()}`, tsconfig: false });
    return this.loader.import(pathToFileURL(file).href, pathToFileURL(path.join(this.dir, "zuplo.jsonc")).href) as Promise<
      Record<string, unknown>
    >;
  }

  /** Loads a project module file once per load (shared with `$import` references to it). */
  async load(file: string): Promise<Record<string, unknown>> {
    let p = this.cache.get(file);
    if (!p) {
      p = this.importFile(file);
      this.cache.set(file, p);
    }
    return interop(await p);
  }

  /** Resolves a reference, or returns the issues explaining why not. */
  async resolve(ref: RawRef): Promise<ResolvedRef | ConfigIssue[]> {
    const at = (k: string) => formatPath([...ref.at, k]);
    const spec = importSpecifier(ref.module);
    if (BUILTIN_MODULES.includes(spec)) {
      const builtin = findBuiltin(spec, ref.export);
      if (builtin) return { impl: "builtin", module: spec, builtin };
      const available = builtinExports(spec).sort();
      return [
        {
          file: ref.file,
          path: at("export"),
          message: `"${ref.export}" is not an export of ${spec}; available: ${available.join(", ") || "(none)"}`,
        },
      ];
    }
    if (spec.startsWith("@zuplo/")) {
      return [
        {
          file: ref.file,
          path: at("module"),
          message: `unknown runtime module "${spec}"; supported: ${BUILTIN_MODULES.join(", ")} and project modules (./modules/…)`,
        },
      ];
    }
    if (!spec.startsWith("./") && !spec.startsWith("../")) {
      return [
        {
          file: ref.file,
          path: at("module"),
          message: `expected $import(@zuplo/runtime), $import(@zuplo/runtime/mcp-gateway) or $import(./modules/…), got ${JSON.stringify(ref.module)}`,
        },
      ];
    }
    const file = findModuleFile(this.dir, spec);
    if (!file) {
      return [{ file: ref.file, path: at("module"), message: `module ${spec} not found in the project` }];
    }
    let mod: Record<string, unknown>;
    try {
      mod = await this.load(file);
    } catch (err) {
      const msg = (err as Error).message?.split("\n")[0] ?? String(err);
      return [{ file: ref.file, path: at("module"), message: `cannot load ${spec}: ${msg}` }];
    }
    const fn = mod[ref.export];
    if (typeof fn !== "function") {
      const fns = Object.keys(mod).filter((k) => typeof mod[k] === "function");
      return [
        {
          file: ref.file,
          path: at("export"),
          message:
            fn === undefined
              ? `${spec} has no export "${ref.export}"; function exports: ${fns.join(", ") || "(none)"}`
              : `export "${ref.export}" of ${spec} must be a function, got ${typeof fn}`,
        },
      ];
    }
    return { impl: "custom", module: spec, fn: fn as (...args: never[]) => unknown };
  }
}
