/**
 * A small bounded LRU map whose entries also expire. Used for verification and lookup caches
 * on the request path, so it is deliberately minimal: a Map kept in recency order.
 */
export class TtlLru<V> {
  private readonly map = new Map<string, { value: V; until: number }>();

  constructor(private readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError("max must be a positive integer");
  }

  /** The live value for `key` at time `now` (ms), refreshing its recency. */
  get(key: string, now: number): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.until <= now) {
      this.map.delete(key);
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  /** Stores `value` until `until` (ms since epoch), evicting the least recently used entry when full. */
  set(key: string, value: V, until: number): void {
    this.map.delete(key);
    this.map.set(key, { value, until });
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}
