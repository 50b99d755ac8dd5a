/**
 * `accessControl` of the capability filter: which of the configured entries this caller may
 * see and use. Each caller's view is the filter compiled from the entries they may use, so the
 * list rewriting and call refusals are the same code for every mode. Compiled views are cached
 * by the set of entries they keep (few distinct role combinations exist).
 *
 * - `allPublic`: one view for everyone.
 * - `rolesAndGroups`: an entry is usable when it is `public`, or one of its `roles` is among the
 *   caller's roles claim, or one of its `groups` among the groups claim. Unmarked entries are
 *   usable by nobody; callers without a user see public entries only.
 * - `function`: a project function returns the identifiers per type; they replace the configured
 *   list of that type, clamped to it. Types the answer leaves out keep their configured list;
 *   omitted (pass-through) types are not narrowed. A throw or a non-object answer hides
 *   everything (fail closed).
 */
import type { GatewayContext, PipelineRequest, UserInfo } from "../../pipeline/types.js";
import { webRequestOf } from "../../pipeline/types.js";
import { globMatcher } from "../shared/glob.js";
import { TtlLru } from "../shared/lru.js";
import { compileFilter, type CapabilityFilter } from "./filter.js";
import { KINDS, type CapabilityFilterOptions } from "./options.js";

/** What a `function` resolver returns: identifiers per capability type. */
export interface AllowedCapabilities {
  tools?: string[];
  prompts?: string[];
  resources?: string[];
  resourceTemplates?: string[];
}

/** The project function of `function` mode: `(request, context, options)`. */
export type CapabilityResolver = (
  request: Request,
  context: GatewayContext,
  options: CapabilityFilterOptions,
) => AllowedCapabilities | undefined | null | Promise<AllowedCapabilities | undefined | null>;

type Kind = (typeof KINDS)[number];
type Entry = string | { [k: string]: unknown; roles?: string[]; groups?: string[]; public?: boolean };
const ID_FIELD: Record<Kind, string> = { tools: "name", prompts: "name", resources: "uri", resourceTemplates: "uriTemplate" };

const idOf = (kind: Kind, e: Entry) => (typeof e === "string" ? e : (e[ID_FIELD[kind]] as string));

/**
 * The values of a claim in `data`: the whole name first (claims such as
 * `https://example.com/roles` contain dots), else a dotted path into nested objects. A string is
 * one value, a list its string members.
 */
export function claimValues(data: Record<string, unknown> | undefined, claim: string): string[] {
  if (!data) return [];
  let v: unknown = data[claim];
  if (v === undefined && claim.includes(".")) {
    v = data;
    for (const part of claim.split(".")) v = v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>)[part] : undefined;
  }
  if (typeof v === "string") return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** Who gets which view of the filter. */
export interface Access {
  /** The filter for this caller. */
  filterFor(request: PipelineRequest, context: GatewayContext): CapabilityFilter | Promise<CapabilityFilter>;
}

/** Builds the access rule for validated options (`resolver` for `function` mode). */
export function createAccess(options: CapabilityFilterOptions, resolver?: CapabilityResolver): Access {
  const ac = options.accessControl;
  if (ac.mode === "allPublic") {
    const filter = compileFilter(options);
    return { filterFor: () => filter };
  }
  const views = new TtlLru<CapabilityFilter>(256);
  /** The view keeping, per type, the entries `keep` accepts (types not given stay as configured). */
  const view = (keep: Partial<Record<Kind, (e: Entry) => boolean>>, extra: Partial<Record<Kind, string[]>> = {}): CapabilityFilter => {
    const derived: CapabilityFilterOptions = { ...options };
    const keyParts: string[] = [];
    for (const kind of KINDS) {
      const spec = options[kind] as Entry[] | { allow?: string[]; deny?: string[] } | undefined;
      const pick = keep[kind];
      if (extra[kind]) {
        (derived as Record<Kind, unknown>)[kind] = extra[kind];
        keyParts.push(`${kind}=${JSON.stringify(extra[kind])}`);
      } else if (pick && Array.isArray(spec)) {
        const kept = spec.filter(pick);
        (derived as Record<Kind, unknown>)[kind] = kept;
        keyParts.push(`${kind}:${kept.map((e) => spec.indexOf(e)).join(",")}`);
      }
    }
    if (!Array.isArray(options.resources) && options.resources && options.resourceTemplates === undefined && Array.isArray(derived.resources)) {
      // Resource patterns also govern templates (see filter.ts); a listed view keeps that rule.
      derived.resourceTemplates = options.resources;
    }
    const key = keyParts.join("|");
    let f = views.get(key, 0);
    if (!f) views.set(key, (f = compileFilter(derived)), Number.MAX_SAFE_INTEGER);
    return f;
  };

  if (ac.mode === "rolesAndGroups") {
    return {
      filterFor(request) {
        const user: UserInfo | undefined = request.user;
        const roles = new Set(claimValues(user?.data, ac.roleClaim));
        const groups = new Set(claimValues(user?.data, ac.groupClaim));
        const usable = (e: Entry) =>
          typeof e !== "string" &&
          (e.public === true || (!!user && (!!e.roles?.some((r) => roles.has(r)) || !!e.groups?.some((g) => groups.has(g)))));
        return view(Object.fromEntries(KINDS.map((k) => [k, usable])));
      },
    };
  }

  if (!resolver) throw new Error('accessControl mode "function" needs its resolver function');
  const closed = view({}, Object.fromEntries(KINDS.map((k) => [k, []])));
  return {
    async filterFor(request, context) {
      let allowed: AllowedCapabilities | undefined | null;
      try {
        allowed = await resolver(webRequestOf(request), context, options);
      } catch (err) {
        context.log.warn({ requestId: context.requestId, errName: (err as Error)?.name, errMessage: (err as Error)?.message }, "capability access function failed; nothing is exposed");
        return closed;
      }
      if (!allowed || typeof allowed !== "object") {
        context.log.warn({ requestId: context.requestId }, "capability access function returned no value; nothing is exposed");
        return closed;
      }
      const keep: Partial<Record<Kind, (e: Entry) => boolean>> = {};
      const extra: Partial<Record<Kind, string[]>> = {};
      for (const kind of KINDS) {
        const ids = allowed[kind];
        const spec = options[kind];
        if (!Array.isArray(ids) || spec === undefined) continue;
        const set = new Set(ids.filter((x) => typeof x === "string"));
        if (Array.isArray(spec)) keep[kind] = (e) => set.has(idOf(kind, e as Entry));
        else {
          // Patterns: the answer's identifiers that the patterns allow become the list.
          const allow = spec.allow ? globMatcher(spec.allow) : () => true;
          const deny = globMatcher(spec.deny ?? []);
          extra[kind] = [...set].filter((id) => allow(id) && !deny(id)).sort();
        }
      }
      return view(keep, extra);
    },
  };
}
