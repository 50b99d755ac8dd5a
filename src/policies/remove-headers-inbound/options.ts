import { z } from "zod";

/** Options of `remove-headers-inbound`. */
export const removeHeadersOptionsSchema = z.strictObject({
  /** Header names (case-insensitive) to drop before the request goes upstream. */
  headers: z
    .array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: "must be a valid HTTP header name" }))
    .min(1, { error: "list at least one header" }),
});

export type RemoveHeadersOptions = z.output<typeof removeHeadersOptionsSchema>;
