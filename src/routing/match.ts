/** Path templates (`/mcp/{id}` or `/connections/:id`) compiled to matchers. */

export interface PathMatcher {
  pattern: string;
  /** Captured params, or undefined when the path does not match. */
  match(pathname: string): Record<string, string> | undefined;
  /** True when the template has no params (exact match suffices). */
  static: boolean;
}

const escape = (s: string) => s.replace(/[.*+?^$()|[\]\\]/g, "\\$&");

/** Compiles an OpenAPI-style (`{name}`) or colon-style (`:name`) template. */
export function compilePath(pattern: string, style: "{}" | ":" = "{}"): PathMatcher {
  const names: string[] = [];
  const paramRe = style === "{}" ? /\{([A-Za-z0-9_]+)\}/g : /:([A-Za-z0-9_]+)/g;
  let source = "";
  let last = 0;
  for (const m of pattern.matchAll(paramRe)) {
    source += escape(pattern.slice(last, m.index));
    source += "([^/]+)";
    names.push(m[1]!);
    last = m.index! + m[0].length;
  }
  source += escape(pattern.slice(last));
  if (names.length === 0) {
    return { pattern, static: true, match: (p) => (p === pattern ? {} : undefined) };
  }
  const re = new RegExp(`^${source}$`);
  return {
    pattern,
    static: false,
    match(pathname) {
      const m = re.exec(pathname);
      if (!m) return undefined;
      const out: Record<string, string> = {};
      names.forEach((n, i) => {
        try {
          out[n] = decodeURIComponent(m[i + 1]!);
        } catch {
          out[n] = m[i + 1]!;
        }
      });
      return out;
    },
  };
}
