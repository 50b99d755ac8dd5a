/**
 * Options a built-in does not know are accepted (projects written for the hosted product may
 * carry settings Tollgate has no use for), but never silently: each one becomes a start-up
 * warning naming the file and JSON path, so a typo or an unsupported setting is visible.
 */
import { z } from "zod";
import type { Builtin } from "../policies/registry.js";
import type { ConfigIssue, Project } from "./types.js";

/** The object shape behind a (possibly wrapped) zod schema, if there is one. */
function shapeOf(schema: unknown): Record<string, unknown> | undefined {
  let s = schema as { def?: Record<string, unknown> } | undefined;
  for (let depth = 0; s && depth < 8; depth++) {
    if (s instanceof z.ZodObject) return s.shape as Record<string, unknown>;
    const def = s.def;
    if (!def) return undefined;
    // Wrappers (default, optional, pipe/transform, preprocess) keep the object one level down.
    s = (def.innerType ?? def.in ?? def.schema) as typeof s;
  }
  return undefined;
}

function unknownKeys(builtin: Builtin, options: unknown): string[] {
  if (typeof options !== "object" || options === null || Array.isArray(options)) return [];
  const shape = shapeOf(builtin.optionsSchema);
  if (!shape) return [];
  return Object.keys(options).filter((k) => !(k in shape));
}

/** Warnings for top-level option keys that built-in policies and handlers ignore. */
export function unknownOptionWarnings(project: Project): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  let index = 0;
  for (const p of project.policies.values()) {
    if (p.impl === "builtin") {
      for (const key of unknownKeys(p.builtin, p.handler.options)) {
        out.push({
          file: "config/policies.json",
          path: `policies[${index}].handler.options.${key}`,
          message: `${p.builtin.exportName} does not use "${key}"; it is ignored`,
        });
      }
    }
    index++;
  }
  for (const r of project.routes) {
    if (r.handlerImpl !== "builtin") continue;
    for (const key of unknownKeys(r.builtin, r.handler.options)) {
      out.push({
        file: "config/routes.oas.json",
        path: `paths["${r.path}"] (${r.operationId}).x-zuplo-route.handler.options.${key}`,
        message: `${r.builtin.exportName} does not use "${key}"; it is ignored`,
      });
    }
  }
  return out;
}
