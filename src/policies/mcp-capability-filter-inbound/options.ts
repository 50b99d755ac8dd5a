import { z } from "zod";

const record = z.record(z.string(), z.unknown());

/** Fields a projection may override; the identity field (name/uri/uriTemplate) never changes. */
const projection = {
  title: z.string().optional(),
  description: z.string().optional(),
  annotations: record.optional(),
  _meta: record.optional(),
};

/** Tollgate's pattern form: `*` globs; deny wins; omitted `allow` allows everything not denied. */
const patterns = z.strictObject({
  allow: z.array(z.string().min(1)).optional(),
  deny: z.array(z.string().min(1)).optional(),
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

/** An allow-list entry: the identifier itself, or an object naming it plus projected fields. */
function entry<K extends string>(idField: K) {
  const id = z.string().min(1);
  const object = z.looseObject({ [idField]: id, ...projection } as { [P in K]: typeof id } & typeof projection);
  return z.unknown().transform((value, ctx): string | z.output<typeof object> => {
    const r = (typeof value === "string" ? id : object).safeParse(value);
    if (r.success) return r.data;
    for (const issue of r.error.issues) ctx.addIssue(issue as Parameters<typeof ctx.addIssue>[0]);
    return z.NEVER;
  });
}

export const capabilityFilterOptionsSchema = z.strictObject({
  /** Matched by `name`. */
  tools: listOrPatterns(entry("name")),
  /** Matched by `name`. */
  prompts: listOrPatterns(entry("name")),
  /** Matched by `uri`. Pattern form also applies to resource templates when `resourceTemplates` is omitted. */
  resources: listOrPatterns(entry("uri")),
  /** Matched by `uriTemplate`. */
  resourceTemplates: listOrPatterns(entry("uriTemplate")),
});

export type CapabilityFilterOptions = z.output<typeof capabilityFilterOptionsSchema>;
