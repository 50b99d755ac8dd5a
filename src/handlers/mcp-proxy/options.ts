/**
 * Options of `McpProxyHandler`, validated once at start-up.
 *
 * The first three follow the project format's URL-rewrite handlers (`rewritePattern`,
 * `forwardSearch`, `followRedirects`); the rest are Tollgate's transport knobs.
 */
import { z } from "zod";
import { checkPatternSyntax } from "./target.js";

/** Connect timeout of the shared upstream dispatcher (undici's default); other values get their own pool. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

const origin = z.string().refine(
  (s) => {
    if (s === "*" || s === "null") return true;
    try {
      const u = new URL(s);
      return u.origin === s.replace(/\/$/, "");
    } catch {
      return false;
    }
  },
  { message: 'expected an origin such as "https://app.example.com" (scheme, host and optional port only)' },
);

export const mcpProxyOptionsSchema = z.object({
  /**
   * The upstream MCP endpoint: a literal URL, optionally with `${env.NAME}` (resolved at start-up),
   * `${params.NAME}` (route path parameters), `${query.NAME}` and `${url.search|pathname|host|…}`.
   */
  rewritePattern: z
    .string()
    .min(1)
    .superRefine((s, ctx) => {
      const problem = checkPatternSyntax(s);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
  /** Append the incoming query string to the upstream URL. */
  forwardSearch: z.boolean().default(true),
  /** Follow upstream 3xx (up to 5 hops, same origin or `allowedRedirectOrigins`); false passes them through. */
  followRedirects: z.boolean().default(false),
  /** Other origins a followed redirect may lead to. Upstream credentials are never sent there. */
  allowedRedirectOrigins: z.array(origin).default([]),
  /** Time allowed to open the upstream connection. */
  connectTimeoutMs: z.number().int().min(1).default(DEFAULT_CONNECT_TIMEOUT_MS),
  /** Time allowed until the upstream's response headers arrive (0 = no limit). */
  firstByteTimeoutMs: z.number().int().min(0).default(60_000),
  /** Longest silence allowed inside a streamed response body before the stream is ended (0 = no limit). */
  idleTimeoutMs: z.number().int().min(0).default(300_000),
  /** Browser origins accepted besides the gateway's own (DNS-rebinding protection). `"*"` accepts any. */
  allowedOrigins: z.array(origin).default([]),
});

export type McpProxyOptions = z.output<typeof mcpProxyOptionsSchema>;
