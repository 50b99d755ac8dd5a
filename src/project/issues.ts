/**
 * Helpers that turn problems into {@link ConfigIssue}s: JSON path formatting and a compact
 * formatter for zod issues (`authMode: expected "user-oauth" | "shared-oauth", got "user"`).
 */
import type { z } from "zod";

/** One JSON path segment. */
export type PathSegment = string | number;

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Formats `["policies", 2, "handler", "options"]` as `policies[2].handler.options`. */
export function formatPath(segments: readonly PathSegment[]): string {
  let out = "";
  for (const s of segments) {
    if (typeof s === "number") out += `[${s}]`;
    else if (IDENT.test(s)) out += out ? `.${s}` : s;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** Reads the value at a path (for "got …" in messages); undefined when absent. */
export function valueAt(root: unknown, segments: readonly PathSegment[]): unknown {
  let cur: unknown = root;
  for (const s of segments) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[s];
  }
  return cur;
}

/** A short, safe description of a JSON value's type. */
export function describeType(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/** Shows a value in a message: strings quoted and shortened, other values by type. */
export function showValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (typeof v === "number" || typeof v === "boolean" || v === null) return String(v);
  return describeType(v);
}

type ZodIssue = z.core.$ZodIssue;

/**
 * Formats one zod issue. `raw` is the value as written in the file (before `$env`): values are
 * shown from it, so a message never contains a resolved secret. `resolved` (after `$env`,
 * default `raw`) decides whether a value is present and what type it has.
 */
export function formatZodIssue(issue: ZodIssue, raw: unknown, resolved: unknown = raw): string {
  const segments = issue.path as PathSegment[];
  const present = valueAt(resolved, segments);
  const got = present === undefined ? undefined : valueAt(raw, segments);
  switch (issue.code) {
    case "invalid_type": {
      if (present === undefined) return `required (expected ${issue.expected})`;
      return `expected ${issue.expected}, got ${describeType(present)}`;
    }
    case "invalid_value": {
      const expected = issue.values.map((v) => JSON.stringify(v)).join(" | ");
      if (present === undefined) return `required (expected ${expected})`;
      return `expected ${expected}, got ${showValue(got)}`;
    }
    case "unrecognized_keys":
      return `unknown ${issue.keys.length === 1 ? "key" : "keys"} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    case "invalid_union": {
      if (present === undefined) return "required";
      if (issue.message && issue.message !== "Invalid input") return issue.message;
      // The one variant that came closest (fewest problems) usually is the one meant: name its
      // problem. A variant whose tag member (`mode: "auto"`) differs is not the one meant.
      const missesTag = (b: ZodIssue[]) => b.some((i) => i.code === "invalid_value" && i.values.length === 1 && i.path.length > 0);
      const branches = [...(issue.errors ?? [])].filter((b) => b.length > 0 && !missesTag(b)).sort((a, b) => a.length - b.length);
      const closest = branches[0];
      const first = closest?.[0];
      if (first && closest.length <= 2 && (branches[1] === undefined || branches[1].length > closest.length)) {
        const at = first.path as PathSegment[];
        const inner = formatZodIssue(first, valueAt(raw, segments), present);
        return at.length ? `${formatPath(at)}: ${inner}` : inner;
      }
      return `invalid value ${showValue(got)}`;
    }
    case "too_small":
    case "too_big":
    case "invalid_format":
    default:
      return issue.message;
  }
}

/** The path of a zod issue, joined under a prefix path. */
export function zodIssuePath(prefix: readonly PathSegment[], issue: ZodIssue): string {
  return formatPath([...prefix, ...(issue.path as PathSegment[])]);
}
