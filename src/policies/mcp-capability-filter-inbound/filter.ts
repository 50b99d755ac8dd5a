/**
 * The compiled capability filter: which tools, prompts, resources and resource templates a
 * route exposes, how list results are rewritten, and which calls are refused.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/tools
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/prompts
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/resources
 * @see https://www.rfc-editor.org/rfc/rfc6570 URI Template
 */
import type { JsonRpcMessage } from "../../mcp/messages.js";
import { globMatcher } from "../shared/glob.js";
import type { CapabilityFilterOptions } from "./options.js";

type Item = Record<string, unknown>;
type Projection = { title?: string; description?: string; name?: string; mimeType?: string; annotations?: Item; _meta?: Item };

/** One capability type's rule. */
export interface KindFilter {
  allows(id: string): boolean;
  /** The item as the client should see it (projection applied). */
  project(item: Item): Item;
}

export type ListKind = "tools" | "prompts" | "resources" | "resourceTemplates";

/**
 * List method → which result array it returns and which field identifies an item. A Map: it is
 * looked up by a method name from the request: no inherited names ("constructor"), and no
 * keyed load by that name (see CAPABILITY_PARAM in src/audit/observation.ts).
 */
export const LIST_METHODS: ReadonlyMap<string, { kind: ListKind; idField: string }> = new Map<string, { kind: ListKind; idField: string }>([
  ["tools/list", { kind: "tools", idField: "name" }],
  ["prompts/list", { kind: "prompts", idField: "name" }],
  ["resources/list", { kind: "resources", idField: "uri" }],
  ["resources/templates/list", { kind: "resourceTemplates", idField: "uriTemplate" }],
]);

function applyProjection(item: Item, p: Projection | undefined): Item {
  if (!p) return item;
  const out: Item = { ...item };
  if (p.title !== undefined) out.title = p.title;
  if (p.name !== undefined) out.name = p.name;
  if (p.description !== undefined) out.description = p.description;
  if (p.mimeType !== undefined) out.mimeType = p.mimeType;
  if (p.annotations) out.annotations = { ...(item.annotations as Item | undefined), ...p.annotations };
  if (p._meta) out._meta = { ...(item._meta as Item | undefined), ...p._meta };
  return out;
}

function compileKind(
  spec: NonNullable<CapabilityFilterOptions[ListKind]> | undefined,
  idField: string,
): KindFilter | undefined {
  if (spec === undefined) return undefined;
  if (Array.isArray(spec)) {
    const entries = new Map<string, Projection | undefined>();
    for (const e of spec as Array<string | Item>) {
      if (typeof e === "string") entries.set(e, undefined);
      else {
        // `name` is the identifier of tools and prompts; of resources and templates it is shown text.
        const { name, ...rest } = e as Projection & Item;
        entries.set(e[idField] as string, (idField === "name" ? rest : { ...rest, name }) as Projection);
      }
    }
    return {
      allows: (id) => entries.has(id),
      project: (item) => applyProjection(item, entries.get(item[idField] as string)),
    };
  }
  const allow = spec.allow ? globMatcher(spec.allow) : undefined;
  const deny = globMatcher(spec.deny ?? []);
  return { allows: (id) => (allow ? allow(id) : true) && !deny(id), project: (item) => item };
}

/** RFC 6570 template → a regex matching the URIs it can expand to (levels 1–4, permissive). */
export function uriTemplateRegex(template: string): RegExp {
  let src = "";
  let last = 0;
  for (const m of template.matchAll(/\{([^}]*)\}/g)) {
    src += template.slice(last, m.index).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const op = m[1]!.charAt(0);
    if (op === "+" || op === "#") src += ".*";
    else if (op === "?" || op === "&") src += "(?:[?&][^#]*)?";
    else if (op === "/") src += "(?:/[^/?#]*)*";
    else if (op === ".") src += "(?:\\.[^/?#]*)*";
    else if (op === ";") src += "(?:;[^/?#]*)*";
    else src += "[^/?#]*";
    last = m.index! + m[0].length;
  }
  src += template.slice(last).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${src}$`);
}

export interface CapabilityFilter {
  kinds: Partial<Record<ListKind, KindFilter>>;
  /** True when the request must not reach the upstream. */
  blocks(message: JsonRpcMessage): boolean;
  /** The filtered list result, or the result unchanged when it is not the expected shape. */
  rewriteList(kind: ListKind, result: unknown): unknown;
}

export function compileFilter(options: CapabilityFilterOptions): CapabilityFilter {
  const tools = compileKind(options.tools, "name");
  const prompts = compileKind(options.prompts, "name");
  const resources = compileKind(options.resources, "uri");
  // Pattern-form resource rules also govern templates unless templates are configured.
  const resourceTemplates =
    compileKind(options.resourceTemplates, "uriTemplate") ??
    (options.resources !== undefined && !Array.isArray(options.resources) ? compileKind(options.resources, "uriTemplate") : undefined);
  // URIs readable through an allow-listed template (array form only).
  const templateRegexes = Array.isArray(options.resourceTemplates)
    ? options.resourceTemplates.map((e) => uriTemplateRegex(typeof e === "string" ? e : e.uriTemplate))
    : [];
  const kinds = { tools, prompts, resources, resourceTemplates };

  const uriReadable = (uri: string) =>
    !resources || resources.allows(uri) || templateRegexes.some((r) => r.test(uri));

  return {
    kinds,
    blocks(m) {
      const p = m.params ?? {};
      switch (m.method) {
        case "tools/call":
          return !!tools && typeof p.name === "string" && !tools.allows(p.name);
        case "prompts/get":
          return !!prompts && typeof p.name === "string" && !prompts.allows(p.name);
        case "resources/read":
        case "resources/subscribe":
        case "resources/unsubscribe":
          return typeof p.uri === "string" && !uriReadable(p.uri);
        case "completion/complete": {
          const ref = p.ref as { type?: unknown; name?: unknown; uri?: unknown } | undefined;
          if (ref?.type === "ref/prompt" && typeof ref.name === "string") return !!prompts && !prompts.allows(ref.name);
          if (ref?.type === "ref/resource" && typeof ref.uri === "string") {
            return !!resourceTemplates && !resourceTemplates.allows(ref.uri);
          }
          return false;
        }
        default:
          return false;
      }
    },
    rewriteList(kind, result) {
      const f = kinds[kind];
      if (!f || typeof result !== "object" || result === null) return result;
      const items = (result as Item)[kind];
      if (!Array.isArray(items)) return result;
      const idField = kind === "resources" ? "uri" : kind === "resourceTemplates" ? "uriTemplate" : "name";
      const kept = items
        .filter((it): it is Item => typeof it === "object" && it !== null && typeof (it as Item)[idField] === "string")
        .filter((it) => f.allows(it[idField] as string))
        .map((it) => f.project(it));
      return { ...(result as Item), [kind]: kept };
    },
  };
}
