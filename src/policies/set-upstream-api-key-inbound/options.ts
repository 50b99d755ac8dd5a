import { z } from "zod";
import { headerNameSchema, headerValueSchema } from "../shared/headers.js";

/** Options of `set-upstream-api-key-inbound`. */
export const setUpstreamApiKeyOptionsSchema = z.strictObject({
  /** The credential, usually `"$env(UPSTREAM_API_KEY)"` or `"Bearer $env(TOKEN)"`. */
  value: headerValueSchema.pipe(
    z.string().min(1, { error: "must not be empty (is the $env variable it names set?)" }),
  ),
  /** Header that carries it upstream. */
  header: headerNameSchema.default("Authorization"),
  /** Replace a value already present for the upstream (default true). */
  overwrite: z.boolean().default(true),
});

export type SetUpstreamApiKeyOptions = z.output<typeof setUpstreamApiKeyOptionsSchema>;
