/**
 * Cross-file rules that no single schema can express: names resolve, kinds match, the
 * token-exchange ordering and uniqueness rules, one downstream authorization server per
 * project, and CORS policy references.
 */
import { formatPath, type PathSegment } from "./issues.js";
import { POLICIES_FILE, ROUTES_FILE, type RawCors, type RawRoute } from "./files.js";
import type { ConfigIssue } from "./types.js";

export const TOKEN_EXCHANGE_TYPE = "mcp-token-exchange-inbound";
const TOKEN_EXCHANGE_PREFIX = "mcp-token-exchange-";

/** What the rules need to know about a policy. */
export interface PolicyFacts {
  name: string;
  policyType: string;
  at: PathSegment[];
  /** `inbound`/`outbound` for built-ins; for custom code guessed from the policyType suffix. */
  kind: "inbound" | "outbound" | undefined;
  /** True for built-ins that authenticate the caller. */
  authenticates: boolean;
  custom: boolean;
  /** Validated options (built-ins) or options after `$env` (custom). */
  options: unknown;
}

/** True for the downstream authorization-server family (`mcp-oauth-inbound`, `mcp-auth0-oauth-inbound`, …). */
export function isMcpOAuthType(policyType: string): boolean {
  return policyType.startsWith("mcp-") && policyType.endsWith("-oauth-inbound");
}

/** The upstream id of a token-exchange policy: option `id`, else the name minus its prefix. */
export function upstreamId(p: Pick<PolicyFacts, "name" | "options">): string {
  const id = (p.options as { id?: unknown } | undefined)?.id;
  if (typeof id === "string" && id) return id;
  return p.name.startsWith(TOKEN_EXCHANGE_PREFIX) ? p.name.slice(TOKEN_EXCHANGE_PREFIX.length) : p.name;
}

/** Guesses a custom policy's kind from its policyType (`custom-code-inbound` → inbound). */
export function kindFromPolicyType(policyType: string): "inbound" | "outbound" | undefined {
  if (policyType.endsWith("-inbound")) return "inbound";
  if (policyType.endsWith("-outbound")) return "outbound";
  return undefined;
}

export const RESERVED_CORS = ["none", "anything-goes"];

/** Runs every cross-file rule. `policies` holds only policies that resolved without error. */
export function checkRules(input: {
  routes: RawRoute[];
  policies: PolicyFacts[];
  /** Names of every declared policy, including ones that failed to resolve. */
  declaredNames: Map<string, PathSegment[]>;
  duplicateNames: Array<{ name: string; at: PathSegment[]; first: PathSegment[] }>;
  cors: RawCors[];
}): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const pol = (at: PathSegment[], message: string) => issues.push({ file: POLICIES_FILE, path: formatPath(at), message });
  const rt = (at: PathSegment[], message: string) => issues.push({ file: ROUTES_FILE, path: formatPath(at), message });

  for (const d of input.duplicateNames) pol([...d.at, "name"], `duplicate policy name "${d.name}" (first declared at ${formatPath(d.first)})`);

  const byName = new Map(input.policies.map((p) => [p.name, p]));

  // One downstream authorization server per project.
  const servers = input.policies.filter((p) => isMcpOAuthType(p.policyType));
  if (servers.length > 1) {
    for (const p of servers.slice(1)) {
      pol(
        [...p.at, "policyType"],
        `only one MCP OAuth policy (mcp-*-oauth-inbound) may exist per project; "${servers[0]!.name}" is already one`,
      );
    }
  }

  // Token-exchange policies must not share an upstream id.
  const ids = new Map<string, PolicyFacts>();
  for (const p of input.policies.filter((x) => x.policyType === TOKEN_EXCHANGE_TYPE)) {
    const id = upstreamId(p);
    const other = ids.get(id);
    if (other) pol([...p.at, "name"], `upstream id "${id}" is already used by policy "${other.name}"; set options.id to tell them apart`);
    else ids.set(id, p);
  }

  // CORS policies: unique, not reserved.
  const corsNames = new Set<string>();
  for (const c of input.cors) {
    const at: PathSegment[] = ["corsPolicies", c.index, "name"];
    if (RESERVED_CORS.includes(c.name)) pol(at, `"${c.name}" is a built-in CORS policy name and cannot be redefined`);
    else if (corsNames.has(c.name)) pol(at, `duplicate CORS policy name "${c.name}"`);
    corsNames.add(c.name);
  }

  for (const r of input.routes) {
    const where = `${r.methods.join(",")} ${r.path}`;
    if (r.corsPolicy !== undefined && !RESERVED_CORS.includes(r.corsPolicy) && !corsNames.has(r.corsPolicy)) {
      rt(
        [...r.at, "corsPolicy"],
        `unknown CORS policy "${r.corsPolicy}" on ${where}; use none, anything-goes or a name from corsPolicies`,
      );
    }
    for (const kind of ["inbound", "outbound"] as const) {
      const names = kind === "inbound" ? r.inbound : r.outbound;
      const seen = new Set<string>();
      names.forEach((name, i) => {
        const at: PathSegment[] = [...r.at, "policies", kind, i];
        if (seen.has(name)) rt(at, `policy "${name}" is listed twice on ${where}`);
        seen.add(name);
        if (!input.declaredNames.has(name)) {
          rt(at, `unknown policy "${name}" on ${where}; it is not defined in ${POLICIES_FILE}`);
          return;
        }
        const p = byName.get(name);
        if (p?.kind && p.kind !== kind) {
          rt(at, `policy "${name}" is an ${p.kind} policy but is listed as ${kind} on ${where}`);
        }
      });
    }
    const exchanges = r.inbound
      .map((name, i) => ({ name, i, p: byName.get(name) }))
      .filter((x) => x.p?.policyType === TOKEN_EXCHANGE_TYPE);
    if (exchanges.length > 1) {
      for (const x of exchanges.slice(1)) {
        rt(
          [...r.at, "policies", "inbound", x.i],
          `only one ${TOKEN_EXCHANGE_TYPE} policy is allowed per route; ${where} also has "${exchanges[0]!.name}"`,
        );
      }
    }
    const first = exchanges[0];
    if (first) {
      const authBefore = r.inbound
        .slice(0, first.i)
        .some((name) => {
          const p = byName.get(name);
          return p !== undefined && (p.authenticates || p.custom);
        });
      if (!authBefore) {
        rt(
          [...r.at, "policies", "inbound", first.i],
          `"${first.name}" must come after an inbound authentication policy on ${where} (it needs the signed-in user)`,
        );
      }
    }
  }
  return issues;
}
