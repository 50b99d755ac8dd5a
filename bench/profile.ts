/**
 * Summarises a V8 `.cpuprofile` (written by `node --cpu-prof`) into the hottest functions by
 * self time, with `file:line`, and the share of time spent per source area.
 */
import fs from "node:fs";
import { SourceMap } from "node:module";
import os from "node:os";
import path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotSpot {
  where: string;
  fn: string;
  selfMs: number;
  share: number;
}

/**
 * Source maps of the TypeScript files tsx compiled, read from its on-disk cache (tsx emits
 * whitespace-minified code, so profile positions must be mapped back to the `.ts` source).
 * The newest cache entry per source file wins.
 */
function tsxSourceMaps(): Map<string, SourceMap> {
  const out = new Map<string, { map: SourceMap; mtime: number }>();
  let uid = 0;
  try {
    uid = os.userInfo().uid;
  } catch {
    // keep 0
  }
  const dir = path.join(os.tmpdir(), `tsx-${uid}`);
  let files: string[] = [];
  try {
    files = fs.readdirSync(dir);
  } catch {
    return new Map();
  }
  for (const f of files) {
    const file = path.join(dir, f);
    try {
      const raw = fs.readFileSync(file, "utf8");
      if (!raw.includes('"map"')) continue;
      const entry = JSON.parse(raw) as { map?: { sources?: string[] } };
      const source = entry.map?.sources?.[0];
      if (!source || !entry.map) continue;
      const mtime = fs.statSync(file).mtimeMs;
      const prev = out.get(source);
      if (!prev || prev.mtime < mtime) out.set(source, { map: new SourceMap(entry.map as never), mtime });
    } catch {
      // not a cache entry
    }
  }
  return new Map([...out].map(([k, v]) => [k, v.map]));
}

function place(url: string, line: number, column: number, root: string, maps: Map<string, SourceMap>): string {
  if (!url) return "(native)";
  let p = url.startsWith("file://") ? new URL(url).pathname : url;
  const map = maps.get(p);
  if (map) {
    const e = map.findEntry(line, column) as { originalLine?: number };
    if (typeof e.originalLine === "number") line = e.originalLine;
  }
  if (p.startsWith(root)) p = path.relative(root, p);
  return `${p}:${line + 1}`;
}

/** Groups a source location into an area: the project's own code, a dependency, or Node itself. */
function area(where: string): string {
  if (where.startsWith("node:")) return `node:${where.slice(5).split(/[/:]/)[0]}`;
  const nm = where.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = where.slice(nm + 13).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (where.startsWith("src/")) return where.split(":")[0]!;
  return where.startsWith("(") ? where : "other";
}

export interface Summary {
  /** Busy time in the window (ms). */
  total: number;
  /** Functions by self time. */
  spots: HotSpot[];
  /** The project's own functions (`src/`) by inclusive time: what they and their callees cost. */
  inclusive: HotSpot[];
  /** Areas (project file, dependency, Node subsystem) by self time. */
  areas: HotSpot[];
}

/**
 * Summarises one profile. `window` keeps only the samples in `[end - skipEnd - ms, end - skipEnd]`
 * (milliseconds), to leave out start-up and shutdown.
 */
export function summarise(file: string, root: string, limit = 15, window?: { ms: number; skipEndMs: number }): Summary {
  const prof = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const maps = tsxSourceMaps();
  const to = prof.endTime - (window?.skipEndMs ?? 0) * 1000;
  const from = window ? to - window.ms * 1000 : -Infinity;
  const self = new Map<number, number>();
  let t = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i] ?? 0;
    if (t < from || t > to) continue;
    const id = prof.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  const whereOf = new Map<number, string>();
  const where = (n: ProfileNode) => {
    let w = whereOf.get(n.id);
    if (w === undefined) {
      w = place(n.callFrame.url, n.callFrame.lineNumber, n.callFrame.columnNumber, root, maps);
      whereOf.set(n.id, w);
    }
    return w;
  };
  const incl = new Map<string, HotSpot>();
  let total = 0;
  const spots = new Map<string, HotSpot>();
  const areas = new Map<string, HotSpot>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const fn = n.callFrame.functionName || "(anonymous)";
    if (fn === "(idle)" || fn === "(program)") continue;
    total += us;
    const w = where(n);
    const key = `${w} ${fn}`;
    const s = spots.get(key) ?? { where: w, fn, selfMs: 0, share: 0 };
    s.selfMs += us / 1000;
    spots.set(key, s);
    const seen = new Set<string>();
    for (let p: number | undefined = id; p !== undefined; p = parent.get(p)) {
      const pn = byId.get(p)!;
      const pw = where(pn);
      if (!pw.startsWith("src/")) continue;
      const pfn = pn.callFrame.functionName || "(anonymous)";
      const k = `${pw} ${pfn}`;
      if (seen.has(k)) continue;
      seen.add(k);
      const e = incl.get(k) ?? { where: pw, fn: pfn, selfMs: 0, share: 0 };
      e.selfMs += us / 1000;
      incl.set(k, e);
    }
    const a = area(w);
    const as = areas.get(a) ?? { where: a, fn: "", selfMs: 0, share: 0 };
    as.selfMs += us / 1000;
    areas.set(a, as);
  }
  const rank = (m: Map<string, HotSpot>) =>
    [...m.values()]
      .map((s) => ({ ...s, share: s.selfMs / (total / 1000) }))
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, limit);
  return { total: total / 1000, spots: rank(spots), inclusive: rank(incl), areas: rank(areas) };
}

/** The newest `.cpuprofile` in a directory. */
export function newestProfile(dir: string): string | undefined {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => path.join(dir, f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  return files[0];
}

/**
 * The profile section of the report (markdown). `count` requests were sent at `rate` per second,
 * or flat out when `rate` is undefined.
 */
export function renderProfile(summary: Summary, count: number, rate: number | undefined): string {
  const { total, spots, inclusive, areas } = summary;
  const pct = (s: { share: number }) => (s.share * 100).toFixed(1);
  const per = (s: { selfMs: number }) => ((s.selfMs * 1000) / count).toFixed(1);
  const lines = [
    "",
    rate === undefined ? "## Profile of the gateway flat out" : `## Profile of the gateway at ${rate} req/s`,
    "",
    `${(total / 1000).toFixed(2)} s of busy samples over ${count} requests (${((total * 1000) / count).toFixed(0)} µs each), idle excluded. ` +
      "Samples are wall time while busy, so they include the profiler's own overhead and time the process spent preempted inside system calls (mostly `writev` on loopback sockets, which wakes the peer process on this 2-core machine); " +
      "read them as shares, not as CPU time. Line numbers are each function's first line.",
    "",
    "Hottest functions by self time:",
    "",
    "| self % | µs/req | function | where |",
    "|---:|---:|---|---|",
    ...spots.map((s) => `| ${pct(s)} | ${per(s)} | \`${s.fn}\` | ${s.where} |`),
    "",
    "The gateway's own functions by inclusive time (the function and everything it calls):",
    "",
    "| incl. % | µs/req | function | where |",
    "|---:|---:|---|---|",
    ...inclusive.map((s) => `| ${pct(s)} | ${per(s)} | \`${s.fn}\` | ${s.where} |`),
    "",
    "Self time by area:",
    "",
    "| self % | µs/req | area |",
    "|---:|---:|---|",
    ...areas.map((a) => `| ${pct(a)} | ${per(a)} | ${a.where} |`),
  ];
  return `${lines.join("\n")}\n`;
}
