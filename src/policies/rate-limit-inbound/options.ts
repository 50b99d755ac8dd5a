import { z } from "zod";

/** Options of `rate-limit-inbound`. */
export const rateLimitOptionsSchema = z.strictObject({
  /**
   * Whose requests share a counter: `user` (request.user.sub; callers without a user are
   * counted per IP), `ip` (the TCP peer address) or `all` (one counter for the route).
   */
  rateLimitBy: z.enum(["user", "ip", "all"], {
    error: 'expected "user" | "ip" | "all" ("function" identifiers are not supported)',
  }),
  /** Requests allowed per window. */
  requestsAllowed: z.number().int().positive(),
  /** Window length in minutes (fractions allowed, at least one second). */
  timeWindowMinutes: z.number().min(1 / 60, { error: "must be at least 1/60 (one second)" }),
  /** `retry-after` (default) sends Retry-After on 429 answers; `none` sends no rate-limit headers. */
  headerMode: z.enum(["retry-after", "none"]).default("retry-after"),
  /** When the store cannot be reached: false (default) lets requests through, true answers 503. */
  throwOnFailure: z.boolean().default(false),
  /** Accepted for compatibility; counting is always synchronous and shared through the store. */
  mode: z.enum(["strict", "async"]).optional(),
});

export type RateLimitOptions = z.output<typeof rateLimitOptionsSchema>;
