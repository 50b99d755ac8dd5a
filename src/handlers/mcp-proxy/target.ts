/**
 * `rewritePattern` → upstream URL. The pattern is compiled once: `${env.NAME}` is resolved at
 * start-up, so a pattern without per-request placeholders costs one string concatenation (the
 * query string) per request.
 */
import type { PipelineRequest } from "../../pipeline/types.js";

const PLACEHOLDER = /\$\{([A-Za-z]+)\.([A-Za-z0-9_.-]+)\}/g;
const URL_PARTS = new Set(["search", "pathname", "host", "hostname", "port", "protocol", "origin"]);

const SAMPLES: Record<string, string> = { search: "", pathname: "/x", protocol: "http:", origin: "http://x", port: "1" };

type Part =
  | { kind: "literal"; text: string }
  | { kind: "params" | "query"; name: string }
  | { kind: "url"; name: string };

/** A compiled rewrite pattern. */
export interface CompiledTarget {
  /** The upstream URL when it does not depend on the request. */
  readonly staticUrl: string | undefined;
  /** True when the pattern places the query string itself (`${url.search}`). */
  readonly placesSearch: boolean;
  /** Builds the upstream URL (without the forwarded query string). */
  build(request: PipelineRequest): string;
}

/** Returns a problem with the pattern's placeholders, or undefined when the syntax is fine. */
export function checkPatternSyntax(pattern: string): string | undefined {
  for (const m of pattern.matchAll(PLACEHOLDER)) {
    const [, scope, name] = m as unknown as [string, string, string];
    if (scope === "env" || scope === "params" || scope === "query") continue;
    if (scope === "url" && URL_PARTS.has(name)) continue;
    return `unsupported placeholder "${m[0]}" (use \${env.NAME}, \${params.NAME}, \${query.NAME} or \${url.search|pathname|host|hostname|port|protocol|origin})`;
  }
  const rest = pattern.replace(PLACEHOLDER, "");
  if (rest.includes("${")) return 'malformed placeholder: expected "${scope.name}"';
  return undefined;
}

function compileParts(pattern: string, env: Record<string, string | undefined>): Part[] {
  const parts: Part[] = [];
  let last = 0;
  let literal = "";
  for (const m of pattern.matchAll(PLACEHOLDER)) {
    const [whole, scope, name] = m as unknown as [string, string, string];
    literal += pattern.slice(last, m.index);
    last = m.index! + whole.length;
    if (scope === "env") {
      const value = env[name];
      if (value === undefined || value === "") {
        throw new Error(`rewritePattern uses \${env.${name}}, but ${name} is not set`);
      }
      literal += value;
      continue;
    }
    if (literal) parts.push({ kind: "literal", text: literal });
    literal = "";
    parts.push({ kind: scope as "params" | "query" | "url", name });
  }
  literal += pattern.slice(last);
  if (literal) parts.push({ kind: "literal", text: literal });
  return parts;
}

function checkUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error("rewritePattern does not produce an absolute URL");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new Error(`rewritePattern must produce an http(s) URL, got "${u.protocol}"`);
  }
  return u;
}

/**
 * Compiles a rewrite pattern. Throws (at start-up) when an `${env.NAME}` is unset or the result
 * is not an http(s) URL. Error messages never include the resolved value (it may hold a secret).
 */
export function compileRewritePattern(pattern: string, env: Record<string, string | undefined>): CompiledTarget {
  const syntax = checkPatternSyntax(pattern);
  if (syntax) throw new Error(`rewritePattern: ${syntax}`);
  const parts = compileParts(pattern, env);
  const placesSearch = parts.some((p) => p.kind === "url" && p.name === "search");
  if (parts.every((p) => p.kind === "literal")) {
    const url = parts.map((p) => (p as { text: string }).text).join("");
    checkUrl(url);
    return { staticUrl: url, placesSearch, build: () => url };
  }
  // Check the shape with sample values now rather than on the first request.
  const sample = parts.map((p) => (p.kind === "literal" ? p.text : p.kind === "url" ? (SAMPLES[p.name] ?? "x") : "x")).join("");
  checkUrl(sample);
  const needsUrl = parts.some((p) => p.kind === "url");
  return {
    staticUrl: undefined,
    placesSearch,
    build(request) {
      const url = needsUrl ? new URL(request.url) : undefined;
      let out = "";
      for (const p of parts) {
        if (p.kind === "literal") out += p.text;
        else if (p.kind === "params") out += encodeURIComponent(request.params[p.name] ?? "");
        else if (p.kind === "query") out += encodeURIComponent(request.query[p.name] ?? "");
        else out += String(url![p.name as "search"]);
      }
      return out;
    },
  };
}

/**
 * The query string of a request URL (with its `?`), without parsing the URL.
 * Returns "" when there is none.
 */
export function searchOf(requestUrl: string): string {
  const q = requestUrl.indexOf("?");
  if (q < 0) return "";
  const hash = requestUrl.indexOf("#", q);
  const s = hash < 0 ? requestUrl.slice(q) : requestUrl.slice(q, hash);
  return s.length > 1 ? s : "";
}

/** Appends a query string (`?a=b`) to a URL that may already have one. */
export function appendSearch(url: string, search: string): string {
  if (!search) return url;
  return url.includes("?") ? `${url}&${search.slice(1)}` : url + search;
}
