/**
 * A Prometheus histogram for the request path: an observation adds one to a bucket count in a
 * typed array (found by the series' key, a string the caller builds from its label values), and
 * the labelled exposition is built only when the registry is read.
 *
 * prom-client's `Histogram#observe` builds, validates and hashes the label set of every
 * observation; buffering values and replaying them through it at scrape time (the earlier
 * approach) still paid that per value, on the request path whenever a buffer filled. This class
 * is registered on the same registry and answers `get()` in prom-client's own format, so the text
 * exposition, `getMetricsAsJSON` and the cluster's `AggregatorRegistry` (which sums histograms
 * bucket by bucket) treat it like any histogram.
 */
import type { Registry } from "prom-client";

/** One labelled series; a hot path may keep it and count into it with {@link BucketHistogram.record}. */
export interface Series {
  labels: Record<string, string>;
  /** Observations per bucket (not cumulative); the last slot is above the highest bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

export class BucketHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  readonly #series = new Map<string, Series>();
  readonly #bounds: Float64Array;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    buckets: readonly number[],
    registry: Registry,
  ) {
    this.#bounds = Float64Array.from([...buckets].sort((a, b) => a - b));
    registry.registerMetric(this as never);
  }

  /**
   * Counts `value` in the series `key`; `labels` is called only the first time a key is seen and
   * must return the same label values every time for that key.
   */
  observe(key: string, labels: () => Record<string, string>, value: number): void {
    if (!Number.isFinite(value)) return;
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, (s = { labels: labels(), counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 }));
    this.#count(s, value);
  }

  /**
   * Counts `value` in the series `key` if it exists; false (nothing counted) when it does not
   * yet, and the caller must {@link observe} with its labels. Lets a hot path build no label
   * closure for series it has seen before.
   */
  observeKnown(key: string, value: number): boolean {
    if (!Number.isFinite(value)) return true;
    const s = this.#series.get(key);
    if (!s) return false;
    this.#count(s, value);
    return true;
  }

  /**
   * The series `key`, created with `labels()` the first time; keep it and count into it with
   * {@link record}, so later observations need no key at all.
   */
  series(key: string, labels: () => Record<string, string>): Series {
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, (s = { labels: labels(), counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 }));
    return s;
  }

  /** Counts `value` in a series this histogram returned from {@link series}. */
  record(s: Series, value: number): void {
    if (Number.isFinite(value)) this.#count(s, value);
  }

  #count(s: Series, value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  /** prom-client's metric interface: the exposition of every series. */
  get(): { name: string; help: string; type: string; values: MetricValue[]; aggregator: string } {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.#series.values()) {
      let acc = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { le: this.#bounds[i]!, ...s.labels }, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: "+Inf", ...s.labels }, value: s.count, metricName: bucket });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /**
   * Starts every series from zero (`registry.resetMetrics()`). Series kept from {@link series}
   * before a reset are no longer exported.
   */
  reset(): void {
    this.#series.clear();
  }
}
