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
const listOrPatterns = <T extends z.ZodType>(entry: T) => z.union([z.array(entry), patterns]).optional();

export const capabilityFilterOptionsSchema = z.strictObject({
  /** Matched by `name`. */
  tools: listOrPatterns(z.union([z.string().min(1), z.looseObject({ name: z.string().min(1), ...projection })])),
  /** Matched by `name`. */
  prompts: listOrPatterns(z.union([z.string().min(1), z.looseObject({ name: z.string().min(1), ...projection })])),
  /** Matched by `uri`. Pattern form also applies to resource templates when `resourceTemplates` is omitted. */
  resources: listOrPatterns(z.union([z.string().min(1), z.looseObject({ uri: z.string().min(1), ...projection })])),
  /** Matched by `uriTemplate`. */
  resourceTemplates: listOrPatterns(
    z.union([z.string().min(1), z.looseObject({ uriTemplate: z.string().min(1), ...projection })]),
  ),
});

export type CapabilityFilterOptions = z.output<typeof capabilityFilterOptionsSchema>;
