/**
 * Loads and validates a project directory (the Zuplo project format, see docs/project-format.md):
 * `zuplo.jsonc`, `config/routes.oas.json`, `config/policies.json`, `modules/`, `.env`.
 * Every problem is collected and thrown at once as a {@link ProjectConfigError}.
 */
import fs from "node:fs/promises";
import path from "node:path";
import "../policies/index.js";
import { ANYTHING_GOES } from "../pipeline/cors.js";
import type { HandlerRef, InboundPolicy, OutboundPolicy, Handler } from "../pipeline/types.js";
import type { Builtin } from "../policies/registry.js";
import { findForbiddenEnv, loadEnv, mentionsEnv, missingVarHint, resolveEnvRefs, type Env } from "./env.js";
import {
  checkPolicies,
  checkRoutes,
  checkZuplo,
  POLICIES_FILE,
  ROUTES_FILE,
  ZUPLO_FILE,
  type RawRef,
} from "./files.js";
import { ModuleResolver } from "./imports.js";
import { loadRuntimeInit } from "./runtime-init.js";
import { unknownOptionWarnings } from "./unknown-options.js";
import { formatPath, formatZodIssue, zodIssuePath, type PathSegment } from "./issues.js";
import { parseJsonc } from "./jsonc.js";
import { checkRules, kindFromPolicyType, type PolicyFacts } from "./rules.js";
import {
  ProjectConfigError,
  type ConfigIssue,
  type CorsPolicyConfig,
  type Project,
  type ResolvedPolicy,
  type ResolvedRoute,
} from "./types.js";

/** MCP gateway features need this compatibility date or later. */
export const MCP_COMPATIBILITY_DATE = "2026-03-01";

export interface LoadProjectOptions {
  /** The process environment; the project's `.env` fills in what it does not set. */
  env?: Env;
}

/**
 * Reads and parses one JSONC project file. Problems go to `issues`; a file with syntax errors
 * is also added to `broken`.
 */
async function readProjectFile(dir: string, file: string, required: boolean, issues: ConfigIssue[], broken: Set<string>): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, file), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      if (required) issues.push({ file, path: "", message: "file not found" });
      return undefined;
    }
    issues.push({ file, path: "", message: `cannot read: ${(err as Error).message}` });
    return undefined;
  }
  const r = parseJsonc(text, file);
  issues.push(...r.issues);
  if (r.issues.length) broken.add(file);
  return r.value;
}

const MCP_POLICY_TYPE = /^mcp-.+-inbound$/;

/** The problem of using an MCP gateway feature with an older compatibilityDate (none if fine or unknown). */
function compatIssue(date: string | undefined, file: string, at: PathSegment[], feature: string): ConfigIssue[] {
  if (date === undefined || date >= MCP_COMPATIBILITY_DATE) return [];
  return [
    {
      file,
      path: formatPath(at),
      message: `${feature} is an MCP gateway feature and needs compatibilityDate >= ${MCP_COMPATIBILITY_DATE} in ${ZUPLO_FILE} (found ${date})`,
    },
  ];
}

/** `$env` is allowed under `…handler.options` of policies and routes only. */
function envAllowed(segments: readonly PathSegment[]): boolean {
  const n = segments.length;
  return n >= 2 && segments[n - 1] === "options" && segments[n - 2] === "handler";
}

interface Resolved {
  ref: HandlerRef;
  impl: "builtin" | "custom";
  builtin?: Builtin;
  fn?: (...args: never[]) => unknown;
  /** Validated options (built-ins), or options after `$env` (custom, or built-ins with issues). */
  options: unknown;
  /** False when `$env` or the options schema reported issues (rules still run on the entry). */
  valid: boolean;
}

/**
 * Resolves `$env` and `$import` of one `{ module, export, options }` and validates built-in
 * options with the export's zod schema.
 */
async function resolveRef(
  raw: RawRef,
  env: Env,
  resolver: ModuleResolver,
  /** The project's date, or undefined to skip the MCP-feature check (already done or unknown). */
  compatibilityDate: string | undefined,
  issues: ConfigIssue[],
  expect: "policy" | "handler",
): Promise<Resolved | undefined> {
  const optionsAt = [...raw.at, "options"];
  if (mentionsEnv(raw.module) || mentionsEnv(raw.export)) return undefined; // reported by findForbiddenEnv
  const envRes = resolveEnvRefs(raw.options, env, raw.file, optionsAt);
  issues.push(...envRes.issues);
  const target = await resolver.resolve(raw);
  if (Array.isArray(target)) {
    issues.push(...target);
    return undefined;
  }
  const ref: HandlerRef = { module: target.module, export: raw.export, options: envRes.value as Record<string, unknown> };
  if (target.impl === "builtin" && (target.builtin.kind === "handler") !== (expect === "handler")) {
    const b = target.builtin;
    issues.push({
      file: raw.file,
      path: formatPath([...raw.at, "export"]),
      message: b.kind === "handler" ? `${b.exportName} is a handler, not a policy` : `${b.exportName} is an ${b.kind} policy, not a handler`,
    });
    return undefined;
  }
  if (target.impl === "custom") return { ref, impl: "custom", fn: target.fn, options: envRes.value, valid: envRes.issues.length === 0 };
  const b = target.builtin;
  if (b.mcpFeature) issues.push(...compatIssue(compatibilityDate, raw.file, [...raw.at, "export"], b.exportName));
  const invalid: Resolved = { ref, impl: "builtin", builtin: b, options: envRes.value, valid: false };
  if (envRes.issues.length) return invalid;
  const parsed = b.optionsSchema.safeParse(envRes.value ?? {});
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const hint = missingVarHint(envRes.missing, i.path as PathSegment[]);
      issues.push({ file: raw.file, path: zodIssuePath(optionsAt, i), message: formatZodIssue(i, raw.options, envRes.value) + hint });
    }
    return invalid;
  }
  let valid = true;
  for (const m of b.moduleRefs?.(parsed.data) ?? []) {
    const at = [...optionsAt, ...m.path];
    const fn = await resolver.resolve({ module: m.module, export: m.export, options: undefined, file: raw.file, at });
    if (Array.isArray(fn)) issues.push(...fn);
    else if (fn.impl === "builtin") issues.push({ file: raw.file, path: formatPath([...at, "module"]), message: "must name a project module ($import(./modules/…))" });
    else {
      m.bind(fn.fn);
      continue;
    }
    valid = false;
  }
  return { ref, impl: "builtin", builtin: b, options: parsed.data, valid };
}

function toCors(c: { name: string; allowedOrigins: string[]; allowedHeaders?: string[] | undefined; allowedMethods?: string[] | undefined; exposeHeaders?: string[] | undefined; maxAge?: number | undefined; allowCredentials?: boolean | undefined }): CorsPolicyConfig {
  return {
    name: c.name,
    allowedOrigins: c.allowedOrigins,
    allowedHeaders: c.allowedHeaders ?? ["*"],
    allowedMethods: (c.allowedMethods ?? ANYTHING_GOES.allowedMethods).map((m) => m.toUpperCase()),
    exposeHeaders: c.exposeHeaders ?? [],
    maxAge: c.maxAge,
    allowCredentials: c.allowCredentials ?? false,
  };
}

/**
 * Loads, resolves and validates the project in `dir`.
 *
 * @throws ProjectConfigError listing every problem (file + JSON path + message).
 */
export async function loadProject(dir: string, opts: LoadProjectOptions = {}): Promise<Project> {
  const root = path.resolve(dir);
  const issues: ConfigIssue[] = [];
  const { env, issues: envIssues } = await loadEnv(root, opts.env ?? {});
  issues.push(...envIssues);

  const broken = new Set<string>();
  const zuploRaw = await readProjectFile(root, ZUPLO_FILE, true, issues, broken);
  const routesRaw = await readProjectFile(root, ROUTES_FILE, true, issues, broken);
  const policiesRaw = await readProjectFile(root, POLICIES_FILE, false, issues, broken);
  // A file that does not parse hides what it declares, so every later check would report its
  // consequences instead (each route naming a policy of a broken policies.json: "unknown
  // policy"). Syntax errors are reported alone, with the other file-level problems.
  if (broken.size) throw new ProjectConfigError(dedupe(issues));

  let compatibilityDate: string | undefined;
  if (zuploRaw !== undefined) {
    issues.push(...findForbiddenEnv(zuploRaw, ZUPLO_FILE, () => false));
    const z = checkZuplo(zuploRaw);
    issues.push(...z.issues);
    compatibilityDate = z.compatibilityDate;
  }
  const routesCheck = routesRaw === undefined ? { routes: [], issues: [] } : checkRoutes(routesRaw);
  if (routesRaw !== undefined) issues.push(...findForbiddenEnv(routesRaw, ROUTES_FILE, envAllowed));
  issues.push(...routesCheck.issues);
  const policiesCheck = policiesRaw === undefined ? { policies: [], cors: [], issues: [] } : checkPolicies(policiesRaw);
  if (policiesRaw !== undefined) issues.push(...findForbiddenEnv(policiesRaw, POLICIES_FILE, envAllowed));
  issues.push(...policiesCheck.issues);

  const resolver = new ModuleResolver(root);
  const policies = new Map<string, ResolvedPolicy>();
  const facts: PolicyFacts[] = [];
  const declaredNames = new Map<string, PathSegment[]>();
  const duplicateNames: Array<{ name: string; at: PathSegment[]; first: PathSegment[] }> = [];

  for (const raw of policiesCheck.policies) {
    const first = declaredNames.get(raw.name);
    if (first) {
      duplicateNames.push({ name: raw.name, at: raw.at, first });
      continue;
    }
    declaredNames.set(raw.name, raw.at);
    // MCP features are recognised by policyType (`mcp-*-inbound`) or by the built-in's flag.
    const mcpType = MCP_POLICY_TYPE.test(raw.policyType);
    if (mcpType) issues.push(...compatIssue(compatibilityDate, POLICIES_FILE, [...raw.at, "policyType"], raw.policyType));
    const r = await resolveRef(raw.handler, env, resolver, mcpType ? undefined : compatibilityDate, issues, "policy");
    if (!r) continue;
    let kind: "inbound" | "outbound" | undefined;
    let authenticates = false;
    if (r.impl === "builtin") {
      const b = r.builtin!;
      if (b.kind === "handler") continue; // reported by resolveRef
      if (!b.policyTypes.includes(raw.policyType)) {
        issues.push({
          file: POLICIES_FILE,
          path: formatPath([...raw.at, "policyType"]),
          message: `${b.exportName} implements ${b.policyTypes.map((t) => JSON.stringify(t)).join(" | ")}, got ${JSON.stringify(raw.policyType)}`,
        });
        continue;
      }
      kind = b.kind;
      authenticates = b.kind === "inbound" && b.authenticates === true;
      policies.set(raw.name, {
        name: raw.name,
        policyType: raw.policyType,
        handler: r.ref,
        impl: "builtin",
        builtin: b,
        options: r.options,
      });
    } else {
      kind = kindFromPolicyType(raw.policyType);
      policies.set(raw.name, {
        name: raw.name,
        policyType: raw.policyType,
        handler: r.ref,
        impl: "custom",
        fn: r.fn as unknown as InboundPolicy | OutboundPolicy,
        options: r.options,
      });
    }
    facts.push({ name: raw.name, policyType: raw.policyType, at: raw.at, kind, authenticates, custom: r.impl === "custom", options: r.options });
  }

  const routes: ResolvedRoute[] = [];
  for (const raw of routesCheck.routes) {
    const r = await resolveRef(raw.handler, env, resolver, compatibilityDate, issues, "handler");
    if (!r) continue;
    const base = {
      path: raw.path,
      methods: raw.methods,
      operationId: raw.operationId,
      corsPolicy: raw.corsPolicy,
      handler: r.ref,
      policies: { inbound: raw.inbound, outbound: raw.outbound },
    };
    if (r.impl === "builtin") {
      const b = r.builtin!;
      if (b.kind !== "handler") continue; // reported by resolveRef
      routes.push({ ...base, mcp: b.mcp, handlerImpl: "builtin", builtin: b, handlerOptions: r.options });
    } else {
      routes.push({ ...base, mcp: false, handlerImpl: "custom", fn: r.fn as unknown as Handler, handlerOptions: r.options });
    }
  }
  const runtime = await loadRuntimeInit(root, resolver, routesCheck.routes, issues);
  issues.push(
    ...checkRules({ routes: routesCheck.routes, policies: facts, declaredNames, duplicateNames, cors: policiesCheck.cors }),
  );

  if (issues.length) throw new ProjectConfigError(dedupe(issues));

  const corsPolicies = new Map<string, CorsPolicyConfig>([[ANYTHING_GOES.name, ANYTHING_GOES]]);
  for (const c of policiesCheck.cors) corsPolicies.set(c.name, toCors(c));
  const project: Project = {
    dir: root,
    compatibilityDate: compatibilityDate!,
    routes,
    policies,
    corsPolicies,
    env,
    warnings: [],
    mcpGateway: runtime.mcpGateway,
  };
  project.warnings = unknownOptionWarnings(project);
  return project;
}

const FILE_ORDER = [".env", ZUPLO_FILE, ROUTES_FILE, POLICIES_FILE];

/** Drops repeated issues and groups them by file (in a fixed file order, stable within a file). */
function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  const rank = (f: string) => (FILE_ORDER.includes(f) ? FILE_ORDER.indexOf(f) : FILE_ORDER.length);
  return issues
    .filter((i) => {
      const k = `${i.file}\0${i.path}\0${i.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => rank(a.issue.file) - rank(b.issue.file) || a.index - b.index)
    .map((x) => x.issue);
}
