/**
 * Which scopes to ask the upstream authorization server for, and when a 403 deserves a step-up.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#scope-selection-strategy
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#step-up-authorization-flow
 */

/** Where the chosen scopes came from (logged, and shown on the admin page). */
export type ScopeSource = "configured" | "challenge" | "scopes_supported" | "none";

/** Splits a space-delimited scope string into unique scopes. */
export function splitScopes(scope: string | undefined, delimiter = " "): string[] {
  if (!scope) return [];
  const parts = delimiter === " " ? scope.split(/\s+/) : scope.split(delimiter);
  return [...new Set(parts.map((s) => s.trim()).filter(Boolean))];
}

/** The union of scope lists, first-seen order kept. */
export function unionScopes(...lists: Array<readonly string[] | undefined>): string[] {
  const out = new Set<string>();
  for (const l of lists) for (const s of l ?? []) out.add(s);
  return [...out];
}

/**
 * Scope choice, in order: explicitly configured scopes (when non-empty); else the `scope` of the
 * upstream's latest challenge; else PRM `scopes_supported`; else none (omit the parameter).
 */
export function chooseScopes(input: {
  configured?: readonly string[] | undefined;
  challengeScope?: string | undefined;
  scopesSupported?: readonly string[] | undefined;
}): { scopes: string[]; source: ScopeSource } {
  if (input.configured && input.configured.length > 0) return { scopes: [...new Set(input.configured)], source: "configured" };
  const fromChallenge = splitScopes(input.challengeScope);
  if (fromChallenge.length > 0) return { scopes: fromChallenge, source: "challenge" };
  if (input.scopesSupported && input.scopesSupported.length > 0) {
    return { scopes: [...new Set(input.scopesSupported)], source: "scopes_supported" };
  }
  return { scopes: [], source: "none" };
}

/** Joins scopes for the `scope` parameter; undefined when there are none (parameter omitted). */
export function formatScopes(scopes: readonly string[], delimiter = " "): string | undefined {
  return scopes.length > 0 ? scopes.join(delimiter) : undefined;
}

/** Largest number of step-ups for one grant before a 403 is passed through. */
export const MAX_STEP_UPS = 3;

/**
 * Decides a step-up after a 403 `insufficient_scope`: returns the scopes to request (the union
 * of what the grant already asked for and what the challenge wants), or undefined when the
 * challenge asks for nothing new (asking again would loop) or the limit is reached.
 */
export function stepUpScopes(input: {
  requested: readonly string[];
  challengeScope: string | undefined;
  stepUps: number;
}): string[] | undefined {
  if (input.stepUps >= MAX_STEP_UPS) return undefined;
  const wanted = splitScopes(input.challengeScope);
  if (wanted.length === 0) return undefined;
  const have = new Set(input.requested);
  if (wanted.every((s) => have.has(s))) return undefined;
  return unionScopes(input.requested, wanted);
}
