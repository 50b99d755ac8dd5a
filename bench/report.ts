/**
 * Turns the measurements into the markdown report: one table of raw numbers, one of ratios
 * (against the direct upstream and against nginx), and the targets with pass/fail.
 */

export interface TargetResult {
  name: string;
  label: string;
  kind: "direct" | "nginx" | "node" | "tollgate";
  rps: number | undefined;
  throughputFailures: number;
  p50: number | undefined;
  p99: number | undefined;
  rateFailures: number;
  /** Proxy process CPU per request (µs) at the fixed rate, and flat out. */
  cpuAtRate: number | undefined;
  /** Lowest and highest round at the fixed rate. */
  cpuRange: [number, number] | undefined;
  cpuAtMax: number | undefined;
  /** Upstream process CPU per request (µs) at the fixed rate (sanity: same for every target). */
  upstreamCpu: number | undefined;
  /** RSS growth per idle SSE stream (KiB), and how many streams were open. */
  sseKiB: number | undefined;
  sseOpen: number | undefined;
  /** Token exchange only: CPU µs/req above its control route, paired by round (median). */
  cpuDeltaVsControl?: number | undefined;
  /**
   * Audit trail off only: what the default configuration's CPU per request is above this
   * target's, flat out and at the fixed rate (medians of the paired differences).
   */
  auditCost?: { flat: number | undefined; rate: number | undefined } | undefined;
  /** Flat-out CPU per request over the bare Node proxy's, per alternating pair. */
  ratioPairs?: number[] | undefined;
  /** The same at the fixed rate. */
  rateRatioPairs?: number[] | undefined;
}

export interface Goals {
  cpuUs: number;
  /**
   * The bare Node proxy's CPU per request on the host the CPU goal was set on. Hosts of one kind
   * differ (the same bare proxy has measured 231 µs on one and 369 µs on another), so the goal is
   * also judged scaled to that host: Tollgate × reference / bare Node of the same run.
   */
  referenceBareNodeUs: number;
  p50AddedMs: number;
  p99AddedMs: number;
  sseKiB: number;
  txDeltaUs: number;
  /** The audit trail and MCP metrics: at most this many µs of CPU per request above them off. */
  auditDeltaUs: number;
  /** Tollgate's CPU per request in the default configuration, at most this many times bare Node's. */
  bareNodeRatio: number;
}

const f = (v: number | undefined, digits = 0) => (v === undefined || !Number.isFinite(v) ? "—" : v.toFixed(digits));
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? "—" : `${(a / b).toFixed(2)}×`;
const added = (a: number | undefined, b: number | undefined, digits = 2) =>
  a === undefined || b === undefined ? "—" : `${a - b >= 0 ? "+" : ""}${(a - b).toFixed(digits)}`;

/** The ratio goal's pairs measured on another Node binary (`npm run bench -- --node BIN`). */
export interface OtherLine {
  /** Its version, as `node --version` prints it. */
  node: string;
  /** Tollgate over bare Node per pair, flat out and at the fixed rate. */
  flat: number[];
  rate: number[];
}

/** Renders the whole report (markdown). */
export function renderReport(
  results: TargetResult[],
  goals: Goals,
  meta: { lines: string[]; rate: number; connections: number; notes: string[]; otherLine?: OtherLine | undefined },
): string {
  const direct = results.find((r) => r.kind === "direct");
  const nginx = results.find((r) => r.kind === "nginx");
  const node = results.find((r) => r.name === "node");
  /**
   * The bare Node proxy run the way `r` is: a gateway with `--workers 2` against the bare proxy
   * in two cluster workers (which pays the same price for spreading over processes), else one.
   */
  const yardstick = (r: TargetResult) => (r.name.endsWith("-w2") ? (results.find((x) => x.name === "node-w2") ?? node) : node);
  const out: string[] = [];
  out.push("## Measurements", "");
  out.push(...meta.lines.map((l) => `- ${l}`), "");
  out.push(
    `| target | max req/s (${meta.connections} conns) | p50 ms @${meta.rate}/s | p99 ms @${meta.rate}/s | proxy CPU µs/req @${meta.rate}/s | proxy CPU µs/req flat out | RSS KiB per idle SSE stream |`,
    "|---|---:|---:|---:|---:|---:|---:|",
  );
  for (const r of results) {
    out.push(
      `| ${r.label} | ${f(r.rps)} | ${f(r.p50, 2)} | ${f(r.p99, 2)} | ${r.kind === "direct" ? "—" : `${f(r.cpuAtRate)}${r.cpuRange ? ` (${f(r.cpuRange[0])}–${f(r.cpuRange[1])})` : ""}`} | ${r.kind === "direct" ? "—" : f(r.cpuAtMax)} | ${f(r.sseKiB, 1)}${r.kind === "direct" ? " (upstream)" : ""} |`,
    );
  }
  out.push("", "### Relative", "");
  out.push(
    "| target | req/s vs direct | req/s vs nginx | p50 added ms | p99 added ms | CPU/req vs nginx | CPU µs/req above bare Node | CPU/req vs bare Node @" + meta.rate + "/s / flat out | SSE memory vs nginx |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  /** CPU per request of `r` over `base`'s, at the fixed rate / flat out. */
  const cpuRatios = (r: TargetResult, base: TargetResult | undefined) => `${ratio(r.cpuAtRate, base?.cpuAtRate)} / ${ratio(r.cpuAtMax, base?.cpuAtMax)}`;
  for (const r of results) {
    if (r.kind === "direct") continue;
    const base = yardstick(r);
    let vsBare = "—";
    if (r.kind === "tollgate") vsBare = cpuRatios(r, node) + (base !== node ? ` (vs 2 processes: ${cpuRatios(r, base)})` : "");
    else if (r.name === "node-w2") vsBare = cpuRatios(r, node);
    out.push(
      `| ${r.label} | ${ratio(r.rps, direct?.rps)} | ${r.kind === "nginx" ? "1.00×" : ratio(r.rps, nginx?.rps)} | ${added(r.p50, direct?.p50)} | ${added(r.p99, direct?.p99)} | ${r.kind === "nginx" ? "1.00×" : ratio(r.cpuAtRate, nginx?.cpuAtRate)} | ${r.kind === "tollgate" ? added(r.cpuAtRate, base?.cpuAtRate, 0) : "—"} | ${vsBare} | ${r.kind === "nginx" ? "1.00×" : ratio(r.sseKiB, nginx?.sseKiB)} |`,
    );
  }
  const tg = results.find((r) => r.name === "tollgate");
  const tx = results.find((r) => r.name === "tollgate-tx");
  const txBase = results.find((r) => r.name === "tollgate-txbase") ?? tg;
  if (tg) {
    out.push("", "### Targets (Tollgate with JWT auth)", "", "| goal | measured | |", "|---|---:|---|");
    const row = (goal: string, v: number | undefined, limit: number, unit: string, digits = 0) =>
      out.push(`| ${goal} | ${v === undefined ? "—" : `${v.toFixed(digits)} ${unit}`} | ${v === undefined ? "not measured" : v <= limit ? "met" : "**missed**"} |`);
    const ratioGoal = (how: string) => `CPU per request ≤ ${goals.bareNodeRatio}× bare Node, ${how}`;
    for (const r of [tg, results.find((x) => x.name === "tollgate-w2")]) {
      const base = r && yardstick(r);
      if (!r || !base?.cpuAtMax || !base.cpuAtRate) continue;
      const which = r === tg ? "default configuration" : base === node ? "default configuration, --workers 2" : "default configuration, --workers 2, against bare Node in 2 processes";
      // The median of the alternating pairs where they were run, else the rounds' figures.
      const ratioRows: Array<[string, number[] | undefined, number]> = [
        ["flat out", r.ratioPairs, r.cpuAtMax! / base.cpuAtMax],
        [`at ${meta.rate}/s`, r.rateRatioPairs, r.cpuAtRate! / base.cpuAtRate],
      ];
      for (const [how, pairs, rounds] of ratioRows) {
        const goal = ratioGoal(how);
        if (pairs?.length) row(`${goal} (${which}; median of ${pairs.length} alternating pairs)`, quantile(pairs, 0.5), goals.bareNodeRatio, "×", 3);
        else row(`${goal} (${which})`, rounds, goals.bareNodeRatio, "×", 3);
      }
      if (base !== node && node?.cpuAtMax && node.cpuAtRate) {
        // Stated beside the goal: the same against the single bare process (rounds' totals).
        out.push(`| for reference: --workers 2 against bare Node in 1 process, flat out / at ${meta.rate}/s | ${(r.cpuAtMax! / node.cpuAtMax).toFixed(2)} × / ${(r.cpuAtRate! / node.cpuAtRate).toFixed(2)} × | (bare Node in 2 processes over 1: ${(base.cpuAtMax / node.cpuAtMax).toFixed(2)} × / ${(base.cpuAtRate / node.cpuAtRate).toFixed(2)} ×) |`);
      }
    }
    const other = meta.otherLine;
    if (other) {
      for (const [how, pairs] of [["flat out", other.flat], [`at ${meta.rate}/s`, other.rate]] as const) {
        row(`${ratioGoal(how)} (default configuration on Node ${other.node}, memory: store; median of ${pairs.length} alternating pairs)`, quantile(pairs, 0.5), goals.bareNodeRatio, "×", 3);
      }
    }
    row(`CPU per request ≤ ${goals.cpuUs} µs (at ${meta.rate}/s), on this host`, tg.cpuAtRate, goals.cpuUs, "µs");
    const scaled = tg.cpuAtRate !== undefined && node?.cpuAtRate ? (tg.cpuAtRate * goals.referenceBareNodeUs) / node.cpuAtRate : undefined;
    row(
      `CPU per request ≤ ${goals.cpuUs} µs (at ${meta.rate}/s), scaled to the reference host where bare Node costs ${goals.referenceBareNodeUs} µs (Tollgate × ${goals.referenceBareNodeUs} / bare Node ${f(node?.cpuAtRate)} µs)`,
      scaled,
      goals.cpuUs,
      "µs",
    );
    const p50 = tg.p50 !== undefined && direct?.p50 !== undefined ? tg.p50 - direct.p50 : undefined;
    const p99 = tg.p99 !== undefined && direct?.p99 !== undefined ? tg.p99 - direct.p99 : undefined;
    row(`p50 added ≤ ${goals.p50AddedMs} ms at ${meta.rate}/s`, p50, goals.p50AddedMs, "ms", 2);
    row(`p99 added ≤ ${goals.p99AddedMs} ms at ${meta.rate}/s`, p99, goals.p99AddedMs, "ms", 2);
    row(`RSS per idle SSE stream ≤ ${goals.sseKiB} KiB`, tg.sseKiB, goals.sseKiB, "KiB", 1);
    const d =
      tx?.cpuDeltaVsControl ?? (tx?.cpuAtRate !== undefined && txBase?.cpuAtRate !== undefined ? tx.cpuAtRate - txBase.cpuAtRate : undefined);
    row(`token exchange warm path ≤ +${goals.txDeltaUs} µs CPU/request (vs. the control route in the same process, median of the paired differences)`, d, goals.txDeltaUs, "µs");
    const audit = results.find((r) => r.auditCost !== undefined)?.auditCost;
    if (audit) {
      row(`audit trail + MCP metrics ≤ +${goals.auditDeltaUs} µs CPU/request, flat out (default configuration vs. TOLLGATE_AUDIT=off served by one process, median of the paired differences)`, audit.flat, goals.auditDeltaUs, "µs");
      row(`audit trail + MCP metrics ≤ +${goals.auditDeltaUs} µs CPU/request, at ${meta.rate}/s (the same pairs at the fixed rate)`, audit.rate, goals.auditDeltaUs, "µs");
    }
  }
  if (meta.notes.length) out.push("", "### Notes", "", ...meta.notes.map((n) => `- ${n}`));
  return `${out.join("\n")}\n`;
}

/** The q-quantile (0..1) of unsorted samples. */
export function quantile(samples: number[], q: number): number | undefined {
  if (samples.length === 0) return undefined;
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
