import { z } from "zod";
import { headerNameSchema, headerValueSchema } from "../shared/headers.js";

/** Options of `set-headers-inbound`. */
export const setHeadersOptionsSchema = z.strictObject({
  headers: z
    .array(
      z.strictObject({
        name: headerNameSchema,
        /** The value, after `$env` resolution. An unset whole-string `$env(X)` is a config error. */
        value: headerValueSchema,
        overwrite: z.boolean().default(true),
      }),
    )
    .min(1, { error: "list at least one header" }),
});

export type SetHeadersOptions = z.output<typeof setHeadersOptionsSchema>;
