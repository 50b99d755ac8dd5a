/**
 * The project's environment: `.env` loading and the `$env(NAME)` rules.
 *
 * `$env(NAME)` is allowed only inside handler and policy `options`:
 * - a whole string `"$env(X)"` becomes the variable's value (undefined when unset);
 * - an embedded reference `"Bearer $env(X)"` is interpolated (unset → empty string).
 * Anywhere else it is a configuration error, so a module path or a route path can never
 * change with the environment.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { parseEnv } from "node:util";
import { formatPath, type PathSegment } from "./issues.js";
import type { ConfigIssue } from "./types.js";

export type Env = Record<string, string | undefined>;

const WHOLE = /^\$env\(([A-Za-z_][A-Za-z0-9_]*)\)$/;
const EMBEDDED = /\$env\(([A-Za-z_][A-Za-z0-9_]*)\)/g;
const ANY = /\$env\(/;

/**
 * Reads `<dir>/.env` (if present) and merges the given environment over it: values from the
 * process environment win over the file.
 */
export async function loadEnv(dir: string, processEnv: Env): Promise<{ env: Env; issues: ConfigIssue[] }> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, ".env"), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { env: { ...processEnv }, issues: [] };
    return { env: { ...processEnv }, issues: [{ file: ".env", path: "", message: `cannot read: ${(err as Error).message}` }] };
  }
  let fromFile: Record<string, string>;
  try {
    fromFile = parseEnv(text) as Record<string, string>;
  } catch (err) {
    return { env: { ...processEnv }, issues: [{ file: ".env", path: "", message: `cannot parse: ${(err as Error).message}` }] };
  }
  const env: Env = { ...fromFile };
  for (const [k, v] of Object.entries(processEnv)) if (v !== undefined) env[k] = v;
  return { env, issues: [] };
}

/** True when a string mentions `$env(`. */
export function mentionsEnv(s: string): boolean {
  return ANY.test(s);
}

/**
 * Reports every `$env(` in `value` (strings and keys) as forbidden at its path. `allowed`
 * returns true for subtrees where `$env` is permitted (they are not descended into).
 */
export function findForbiddenEnv(
  value: unknown,
  file: string,
  allowed: (segments: readonly PathSegment[]) => boolean,
  at: PathSegment[] = [],
): ConfigIssue[] {
  if (allowed(at)) return [];
  const issues: ConfigIssue[] = [];
  const report = (segments: PathSegment[]) =>
    issues.push({
      file,
      path: formatPath(segments),
      message: "$env(...) is only allowed inside handler and policy options",
    });
  if (typeof value === "string") {
    if (mentionsEnv(value)) report(at);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => issues.push(...findForbiddenEnv(v, file, allowed, [...at, i])));
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (mentionsEnv(k)) report([...at, k]);
      issues.push(...findForbiddenEnv(v, file, allowed, [...at, k]));
    }
  }
  return issues;
}

/** Result of resolving `$env` in an options object. */
export interface EnvResolution {
  value: unknown;
  issues: ConfigIssue[];
  /** Paths (relative to the options) whose whole-string reference named an unset variable. */
  unset: Map<string, string>;
  /** Every reference (whole or embedded) to a variable that is unset or empty, where it is. */
  missing: MissingVar[];
}

/** A `$env(NAME)` whose variable is unset or set to the empty string. */
export interface MissingVar {
  /** Path of the string holding the reference, relative to the options. */
  at: PathSegment[];
  name: string;
  /** Set, but to `""` (else unset). */
  empty: boolean;
}

/**
 * The note appended to a problem found at `at` (relative to the options): names the unset or
 * empty variables referenced at that path or below it — a problem on an object (a missing
 * member, no matching variant) is often caused by a variable inside it. Empty when none.
 */
export function missingVarHint(missing: readonly MissingVar[], at: readonly PathSegment[]): string {
  const under = missing.filter((m) => at.every((seg, i) => String(m.at[i]) === String(seg)));
  if (under.length === 0) return "";
  const unset = [...new Set(under.filter((m) => !m.empty).map((m) => m.name))];
  const empty = [...new Set(under.filter((m) => m.empty).map((m) => m.name))];
  const parts: string[] = [];
  if (unset.length) parts.push(`environment variable${unset.length > 1 ? "s" : ""} ${unset.join(", ")} ${unset.length > 1 ? "are" : "is"} not set`);
  if (empty.length) parts.push(`environment variable${empty.length > 1 ? "s" : ""} ${empty.join(", ")} ${empty.length > 1 ? "are" : "is"} empty`);
  return ` (${parts.join("; ")})`;
}

/**
 * Replaces `$env(NAME)` references in an options value. Object keys must not contain `$env`.
 * Malformed references (`$env(1X)`, `$env(` without `)`) are errors.
 */
export function resolveEnvRefs(value: unknown, env: Env, file: string, prefix: PathSegment[]): EnvResolution {
  const issues: ConfigIssue[] = [];
  const unset = new Map<string, string>();
  const missing: MissingVar[] = [];
  const note = (rel: PathSegment[], name: string) => {
    const v = env[name];
    if (v === undefined || v === "") missing.push({ at: rel, name, empty: v === "" });
  };
  const walk = (v: unknown, rel: PathSegment[]): unknown => {
    if (typeof v === "string") {
      if (!mentionsEnv(v)) return v;
      const whole = WHOLE.exec(v);
      if (whole) {
        const name = whole[1]!;
        const resolved = env[name];
        if (resolved === undefined) unset.set(formatPath(rel), name);
        note(rel, name);
        return resolved;
      }
      const stripped = v.replace(EMBEDDED, "");
      if (mentionsEnv(stripped)) {
        issues.push({
          file,
          path: formatPath([...prefix, ...rel]),
          message: "malformed $env reference: use $env(NAME) with NAME made of letters, digits and _",
        });
        return v;
      }
      return v.replace(EMBEDDED, (_m, name: string) => {
        note(rel, name);
        return env[name] ?? "";
      });
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...rel, i]));
    if (v !== null && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (mentionsEnv(k)) {
          issues.push({ file, path: formatPath([...prefix, ...rel, k]), message: "$env(...) is not allowed in an object key" });
        }
        const r = walk(x, [...rel, k]);
        if (r !== undefined) out[k] = r;
      }
      return out;
    }
    return v;
  };
  return { value: walk(value, []), issues, unset, missing };
}
