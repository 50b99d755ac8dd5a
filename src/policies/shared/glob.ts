/**
 * Name patterns for allow/deny lists: `*` matches any run of characters (including none);
 * everything else is literal and case-sensitive.
 */

/** Compiles a list of patterns into one predicate. An empty list matches nothing. */
export function globMatcher(patterns: readonly string[]): (name: string) => boolean {
  const literals = new Set<string>();
  const regexes: RegExp[] = [];
  for (const p of patterns) {
    if (!p.includes("*")) literals.add(p);
    else regexes.push(new RegExp(`^${p.split("*").map(escapeRe).join("[\\s\\S]*")}$`));
  }
  return (name) => literals.has(name) || regexes.some((r) => r.test(name));
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
