/**
 * The gateway's own endpoints (`/.well-known/*`, `<basePath>/*`, health). Policies register
 * them at build time; the gateway consults this table before the project's routes.
 */
import type { GatewayServices } from "../pipeline/services.js";
import { compilePath, type PathMatcher } from "./match.js";

export interface SystemRequestContext {
  params: Record<string, string>;
  requestId: string;
  services: GatewayServices;
  /** Remote address of the TCP peer (for loopback-only endpoints). */
  remoteAddress: string | undefined;
  /**
   * The client's address: the peer's, or what a trusted proxy says (`TOLLGATE_TRUSTED_PROXIES`).
   * Use it for per-client limits. Absent means the same as `remoteAddress`.
   */
  clientAddress?: string | undefined;
}

export type SystemHandler = (request: Request, ctx: SystemRequestContext) => Promise<Response> | Response;

interface Entry {
  methods: Set<string>;
  matcher: PathMatcher;
  handler: SystemHandler;
}

/** Route table for gateway endpoints. Later registrations of the same method+path are ignored. */
export class SystemRoutes {
  private readonly entries: Entry[] = [];

  /** Registers `handler` for `methods` on `path` (`:name` segments capture). */
  add(methods: string[], path: string, handler: SystemHandler): void {
    const upper = methods.map((m) => m.toUpperCase());
    const exists = this.entries.some(
      (e) => e.matcher.pattern === path && upper.every((m) => e.methods.has(m)),
    );
    if (exists) return;
    this.entries.push({ methods: new Set(upper), matcher: compilePath(path, ":"), handler });
  }

  /**
   * Registers `handler` for `methods` on `prefix` and everything below it. Checked in
   * registration order, so register the specific paths under the prefix first.
   */
  addPrefix(methods: string[], prefix: string, handler: SystemHandler): void {
    const matcher: PathMatcher = {
      pattern: `${prefix}/*`,
      static: false,
      match: (p) => (p === prefix || p.startsWith(`${prefix}/`) ? {} : undefined),
    };
    this.entries.push({ methods: new Set(methods.map((m) => m.toUpperCase())), matcher, handler });
  }

  /** Finds a handler; `allow` lists methods when the path matches but the method does not. */
  match(
    method: string,
    pathname: string,
  ): { handler: SystemHandler; params: Record<string, string> } | { allow: string[] } | undefined {
    const allow: string[] = [];
    for (const e of this.entries) {
      const params = e.matcher.match(pathname);
      if (!params) continue;
      if (e.methods.has(method) || (method === "HEAD" && e.methods.has("GET"))) return { handler: e.handler, params };
      allow.push(...e.methods);
    }
    return allow.length ? { allow } : undefined;
  }
}
