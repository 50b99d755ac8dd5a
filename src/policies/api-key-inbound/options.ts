import { z } from "zod";
import { headerNameSchema } from "../shared/headers.js";
import { MIN_API_KEY_LENGTH } from "./consumers.js";

const consumerSchema = z.strictObject({
  /** Becomes `request.user.sub`. */
  name: z.string().min(1),
  /** The key, normally `"$env(SOME_KEY)"`. */
  key: z.string().min(MIN_API_KEY_LENGTH, {
    error: `must be at least ${MIN_API_KEY_LENGTH} characters (is the $env variable it names set?)`,
  }),
  /** Becomes `request.user.data`. */
  metadata: z.record(z.string(), z.unknown()).optional(),
  /** Added to `request.user.data.roles`. */
  roles: z.array(z.string()).optional(),
});

/** Options of `api-key-inbound`. */
export const apiKeyOptionsSchema = z
  .strictObject({
    allowUnauthenticatedRequests: z.boolean().default(false),
    /** How long store lookups are remembered in memory (0 disables the cache). */
    cacheTtlSeconds: z.number().min(0).default(60),
    /** Consumers declared in config, in addition to those in the store. */
    consumers: z.array(consumerSchema).optional(),
    /** Header carrying the key (default `Authorization`). */
    authHeader: headerNameSchema.default("Authorization"),
    /** Scheme before the key (default `Bearer`); empty means the whole header value is the key. */
    authScheme: z.string().regex(/^[A-Za-z0-9._~+/-]*$/).default("Bearer"),
    /** Accepted for compatibility with existing projects; not used. */
    bucketName: z.string().optional(),
    /** Accepted for compatibility with existing projects; not used. */
    disableAutomaticCallerAuthorization: z.boolean().optional(),
  })
  .superRefine((o, ctx) => {
    // One consumer may list several entries (key rotation); one key must not serve two entries.
    const keys = new Set<string>();
    (o.consumers ?? []).forEach((c, i) => {
      if (keys.has(c.key)) ctx.addIssue({ code: "custom", path: ["consumers", i, "key"], message: "the same key is listed twice" });
      keys.add(c.key);
    });
  });

export type ApiKeyOptions = z.output<typeof apiKeyOptionsSchema>;
