/**
 * Options of `mcp-capability-filter-inbound`: which tools, prompts, resources and resource
 * templates a route exposes, how they are shown, and who may use each (`accessControl`).
 */
import { z } from "zod";

const record = z.record(z.string(), z.unknown());
const nonEmpty = z.string().min(1);

/** Who may use an entry (`accessControl.mode: "rolesAndGroups"`). */
const markup = {
  roles: z.array(nonEmpty).min(1).optional(),
  groups: z.array(nonEmpty).min(1).optional(),
  public: z.boolean().optional(),
};

/** Tollgate's pattern form: `*` globs; deny wins; omitted `allow` allows everything not denied. */
const patterns = z.strictObject({
  allow: z.array(nonEmpty).optional(),
  deny: z.array(nonEmpty).optional(),
});

/**
 * Each capability option is either an allow-list (exact identifiers, or projection objects that
 * also override what the client sees; `[]` exposes nothing) or `{ allow?, deny? }` patterns.
 * Omitting the option passes that capability type through unchanged.
 */
function listOrPatterns<T extends z.ZodType>(entry: T) {
  const list = z.array(entry);
  // Chosen by shape rather than z.union, so errors point inside the form actually written.
  return z
    .unknown()
    .transform((value, ctx): z.output<typeof list> | z.output<typeof patterns> => {
      if (!Array.isArray(value) && (typeof value !== "object" || value === null)) {
        ctx.addIssue({ code: "custom", message: "expected a list of identifiers/objects, or { allow, deny } patterns" });
        return z.NEVER;
      }
      const r = (Array.isArray(value) ? list : patterns).safeParse(value);
      if (r.success) return r.data;
      for (const issue of r.error.issues) ctx.addIssue(issue as Parameters<typeof ctx.addIssue>[0]);
      return z.NEVER;
    })
    .optional();
}

/** An allow-list entry: the identifier itself, or an object naming it plus projected fields and markup. */
function entry<S extends z.ZodRawShape>(shape: S) {
  const object = z.strictObject({
    ...shape,
    /** Tollgate: replaces the title clients see. */
    title: z.string().optional(),
    description: z.string().optional(),
    annotations: record.optional(),
    _meta: record.optional(),
    ...markup,
  });
  return z.unknown().transform((value, ctx): string | z.output<typeof object> => {
    const r = (typeof value === "string" ? nonEmpty : object).safeParse(value);
    if (r.success) return r.data as string | z.output<typeof object>;
    for (const issue of r.error.issues) ctx.addIssue(issue as Parameters<typeof ctx.addIssue>[0]);
    return z.NEVER;
  });
}

/** `accessControl`: who may see and use which entries. */
export const accessControlSchema = z.strictObject({
  /** `allPublic`: everyone; `rolesAndGroups`: the entries' markup; `function`: a project function decides. */
  mode: z.enum(["allPublic", "rolesAndGroups", "function"]).default("allPublic"),
  /** Claim of `request.user.data` holding the caller's roles (a dotted path reaches into objects). */
  roleClaim: nonEmpty.default("roles"),
  /** Claim holding the caller's groups (a dotted path reaches into objects). */
  groupClaim: nonEmpty.default("groups"),
  /** `function` mode: the project module and export that return the caller's allowed capabilities. */
  identifier: z.strictObject({ module: nonEmpty, export: nonEmpty }).optional(),
});

export const KINDS = ["tools", "prompts", "resources", "resourceTemplates"] as const;

export const capabilityFilterOptionsSchema = z
  .strictObject({
    /** Matched by `name`. */
    tools: listOrPatterns(entry({ name: nonEmpty })),
    /** Matched by `name`. */
    prompts: listOrPatterns(entry({ name: nonEmpty })),
    /** Matched by `uri`. Pattern form also applies to resource templates when `resourceTemplates` is omitted. */
    resources: listOrPatterns(entry({ uri: nonEmpty, name: z.string().optional(), mimeType: z.string().optional() })),
    /** Matched by `uriTemplate`. */
    resourceTemplates: listOrPatterns(entry({ uriTemplate: nonEmpty, name: z.string().optional(), mimeType: z.string().optional() })),
    accessControl: accessControlSchema.prefault({}),
  })
  .superRefine((o, ctx) => {
    const mode = o.accessControl.mode;
    if (mode === "function" && !o.accessControl.identifier) {
      ctx.addIssue({ code: "custom", path: ["accessControl", "identifier"], message: 'is required with mode "function" ({ module, export })' });
    }
    if (mode !== "function" && o.accessControl.identifier) {
      ctx.addIssue({ code: "custom", path: ["accessControl", "identifier"], message: `applies only to mode "function", not "${mode}"` });
    }
    for (const kind of KINDS) {
      const spec = o[kind];
      if (!Array.isArray(spec)) {
        if (spec && mode === "rolesAndGroups") {
          ctx.addIssue({ code: "custom", path: [kind], message: 'mode "rolesAndGroups" needs a list of entries (patterns carry no roles or groups)' });
        }
        continue;
      }
      spec.forEach((e, i) => {
        if (typeof e === "string") return;
        const marked = e.roles !== undefined || e.groups !== undefined || e.public !== undefined;
        if (marked && mode !== "rolesAndGroups") {
          ctx.addIssue({
            code: "custom",
            path: [kind, i],
            message: `roles, groups and public need accessControl.mode "rolesAndGroups" (the mode is "${mode}")`,
          });
        } else if (e.public !== undefined && (e.roles !== undefined || e.groups !== undefined)) {
          ctx.addIssue({ code: "custom", path: [kind, i, "public"], message: "an entry is either public or for roles/groups, not both" });
        }
      });
    }
  });

export type CapabilityFilterOptions = z.output<typeof capabilityFilterOptionsSchema>;
export type AccessControl = CapabilityFilterOptions["accessControl"];
