/**
 * Shape checks for the three project files (`zuplo.jsonc`, `config/routes.oas.json`,
 * `config/policies.json`). Produces raw, unresolved entries plus every issue found; the
 * cross-file rules and `$import` resolution happen in `load.ts`.
 */
import { z } from "zod";
import { formatPath, formatZodIssue, zodIssuePath, type PathSegment } from "./issues.js";
import type { ConfigIssue } from "./types.js";

/** Project-relative names of the three project files (as they appear in problem reports). */
export const ZUPLO_FILE = "zuplo.jsonc";
export const ROUTES_FILE = "config/routes.oas.json";
export const POLICIES_FILE = "config/policies.json";

/** `{ module, export, options }` as written, with its location. */
export interface RawRef {
  module: string;
  export: string;
  options: unknown;
  file: string;
  /** Path to the `handler` object. */
  at: PathSegment[];
}

/** One operation of `routes.oas.json` (one route, possibly several methods), not yet resolved. */
export interface RawRoute {
  path: string;
  methods: string[];
  operationId: string;
  corsPolicy: string | undefined;
  handler: RawRef;
  inbound: string[];
  outbound: string[];
  /** Path to the `x-zuplo-route` object. */
  at: PathSegment[];
}

/** One entry of `policies.json` `policies`, not yet resolved. */
export interface RawPolicy {
  name: string;
  policyType: string;
  handler: RawRef;
  at: PathSegment[];
}

const refSchema = z.object({
  module: z.string().min(1),
  export: z.string().min(1),
  options: z.record(z.string(), z.unknown()).optional(),
});

const zuploSchema = z.object({
  version: z.literal(1).optional(),
  compatibilityDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "expected a date like 2026-03-01"),
});

const routeSchema = z.object({
  corsPolicy: z.string().min(1).optional(),
  handler: refSchema,
  policies: z
    .object({
      inbound: z.array(z.string().min(1)).optional(),
      outbound: z.array(z.string().min(1)).optional(),
    })
    .optional(),
});

const policySchema = z.object({
  name: z.string().min(1),
  policyType: z.string().min(1),
  handler: refSchema,
});

const originList = z.union([z.string().transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean)), z.array(z.string())]);

const corsSchema = z.object({
  name: z.string().min(1),
  allowedOrigins: originList,
  allowedHeaders: originList.optional(),
  allowedMethods: originList.optional(),
  exposeHeaders: originList.optional(),
  maxAge: z.number().int().nonnegative().optional(),
  allowCredentials: z.boolean().optional(),
});
/** One entry of `policies.json` `corsPolicies`, with its index for problem paths. */
export type RawCors = z.output<typeof corsSchema> & { index: number };

function zodIssues(file: string, prefix: PathSegment[], raw: unknown, error: z.ZodError): ConfigIssue[] {
  return error.issues.map((i) => ({ file, path: zodIssuePath(prefix, i), message: formatZodIssue(i, raw) }));
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** Checks `zuplo.jsonc`. */
export function checkZuplo(value: unknown): { compatibilityDate: string | undefined; issues: ConfigIssue[] } {
  const r = zuploSchema.safeParse(value);
  if (!r.success) {
    return { compatibilityDate: undefined, issues: zodIssues(ZUPLO_FILE, [], value, r.error) };
  }
  return { compatibilityDate: r.data.compatibilityDate, issues: [] };
}

const HTTP_METHODS = new Set(["get", "head", "post", "put", "patch", "delete", "options"]);
/** Path-item members that are not operations (OpenAPI 3.1 §4.8.9). */
const PATH_ITEM_FIELDS = new Set(["summary", "description", "parameters", "servers", "$ref"]);
const PARAM = /\{([^{}]*)\}/g;

/** Checks an OpenAPI path template: leading slash, `{name}` params with simple names. */
function checkPathTemplate(p: string): string | undefined {
  if (!p.startsWith("/")) return "a route path must start with /";
  const names = new Set<string>();
  for (const m of p.matchAll(PARAM)) {
    const name = m[1]!;
    if (!/^[A-Za-z0-9_]+$/.test(name)) return `path parameter {${name}} must be made of letters, digits and _`;
    if (names.has(name)) return `path parameter {${name}} appears twice`;
    names.add(name);
  }
  if (p.replace(PARAM, "").match(/[{}]/)) return "unbalanced { or } in path";
  return undefined;
}

/** Checks `config/routes.oas.json` and extracts its routes. */
export function checkRoutes(value: unknown): { routes: RawRoute[]; issues: ConfigIssue[] } {
  const file = ROUTES_FILE;
  const issues: ConfigIssue[] = [];
  const routes: RawRoute[] = [];
  const issue = (at: PathSegment[], message: string) => issues.push({ file, path: formatPath(at), message });
  if (!isObject(value)) {
    issue([], "expected an OpenAPI document (a JSON object)");
    return { routes, issues };
  }
  if (value.openapi !== undefined && (typeof value.openapi !== "string" || !value.openapi.startsWith("3."))) {
    issue(["openapi"], `expected an OpenAPI 3.x version string, got ${JSON.stringify(value.openapi)}`);
  }
  const paths = value.paths;
  if (paths === undefined) return { routes, issues };
  if (!isObject(paths)) {
    issue(["paths"], "expected an object of paths");
    return { routes, issues };
  }
  const operationIds = new Map<string, string>();
  const seen = new Set<string>();
  for (const [p, item] of Object.entries(paths)) {
    const tmpl = checkPathTemplate(p);
    if (tmpl) issue(["paths", p], tmpl);
    if (!isObject(item)) {
      issue(["paths", p], "expected a path item object");
      continue;
    }
    for (const [key, op] of Object.entries(item)) {
      if (PATH_ITEM_FIELDS.has(key) || key.startsWith("x-")) continue;
      const at: PathSegment[] = ["paths", p, key];
      const methods = key.split(",").map((m) => m.trim().toLowerCase());
      const bad = methods.filter((m) => !HTTP_METHODS.has(m));
      if (bad.length) {
        issue(at, `unsupported method key: ${bad.map((b) => JSON.stringify(b)).join(", ")} (use get, post, put, patch, delete, head, options; several joined with commas)`);
        continue;
      }
      for (const m of methods) {
        const k = `${m.toUpperCase()} ${p}`;
        if (seen.has(k)) issue(at, `${m.toUpperCase()} ${p} is declared more than once`);
        seen.add(k);
      }
      if (!isObject(op)) {
        issue(at, "expected an operation object");
        continue;
      }
      const opId = op.operationId;
      if (typeof opId !== "string" || opId.trim() === "") {
        issue([...at, "operationId"], "required: every operation needs a unique operationId");
      } else if (operationIds.has(opId)) {
        issue([...at, "operationId"], `duplicate operationId "${opId}" (also used at ${operationIds.get(opId)})`);
      } else {
        operationIds.set(opId, formatPath(at));
      }
      const rawRoute = op["x-zuplo-route"];
      if (rawRoute === undefined) {
        issue([...at, "x-zuplo-route"], "required: every operation needs an x-zuplo-route");
        continue;
      }
      const r = routeSchema.safeParse(rawRoute);
      if (!r.success) {
        issues.push(...zodIssues(file, [...at, "x-zuplo-route"], rawRoute, r.error));
        continue;
      }
      const routeAt: PathSegment[] = [...at, "x-zuplo-route"];
      routes.push({
        path: p,
        methods: [...new Set(methods.map((m) => m.toUpperCase()))],
        operationId: typeof opId === "string" ? opId : "",
        corsPolicy: r.data.corsPolicy,
        handler: {
          module: r.data.handler.module,
          export: r.data.handler.export,
          options: r.data.handler.options ?? {},
          file,
          at: [...routeAt, "handler"],
        },
        inbound: r.data.policies?.inbound ?? [],
        outbound: r.data.policies?.outbound ?? [],
        at: routeAt,
      });
    }
  }
  return { routes, issues };
}

/** Checks `config/policies.json` and extracts policies and CORS policies. */
export function checkPolicies(value: unknown): { policies: RawPolicy[]; cors: RawCors[]; issues: ConfigIssue[] } {
  const file = POLICIES_FILE;
  const issues: ConfigIssue[] = [];
  const policies: RawPolicy[] = [];
  const cors: RawCors[] = [];
  if (!isObject(value)) {
    issues.push({ file, path: "", message: 'expected an object like {"policies": [], "corsPolicies": []}' });
    return { policies, cors, issues };
  }
  const list = value.policies ?? [];
  if (!Array.isArray(list)) issues.push({ file, path: "policies", message: "expected an array" });
  else {
    list.forEach((raw: unknown, i) => {
      const r = policySchema.safeParse(raw);
      if (!r.success) {
        issues.push(...zodIssues(file, ["policies", i], raw, r.error));
        return;
      }
      const at: PathSegment[] = ["policies", i];
      policies.push({
        name: r.data.name,
        policyType: r.data.policyType,
        handler: {
          module: r.data.handler.module,
          export: r.data.handler.export,
          options: r.data.handler.options ?? {},
          file,
          at: [...at, "handler"],
        },
        at,
      });
    });
  }
  const corsList = value.corsPolicies ?? [];
  if (!Array.isArray(corsList)) issues.push({ file, path: "corsPolicies", message: "expected an array" });
  else {
    corsList.forEach((raw: unknown, i) => {
      const r = corsSchema.safeParse(raw);
      if (!r.success) issues.push(...zodIssues(file, ["corsPolicies", i], raw, r.error));
      else cors.push({ ...r.data, index: i });
    });
  }
  return { policies, cors, issues };
}
