/**
 * A small bounded LRU map whose entries also expire. Used for verification and lookup caches
 * on the request path, so it is deliberately minimal: a Map kept in recency order.
 *
 * Recency is kept to within half the capacity: a hit moves its entry to the recent end only once
 * the entry has fallen into the older half of the order. An entry with fewer than `max / 2`
 * insertions or moves after its own cannot be the next one evicted, so nothing is lost by leaving
 * it where it is — and a hot entry (one bearer token on every request) is not deleted and
 * re-inserted on each hit, which made the Map compact its table every few requests.
 */
interface Entry<V> {
  value: V;
  until: number;
  /** The clock at the entry's insertion or last move. */
  at: number;
}

export class TtlLru<V> {
  private readonly map = new Map<string, Entry<V>>();
  /** Counts insertions and moves. */
  private clock = 0;
  /** Moves and insertions an entry may have after its own before a hit moves it. */
  private readonly fresh: number;

  constructor(private readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError("max must be a positive integer");
    this.fresh = max >> 1;
  }

  /** The live value for `key` at time `now` (ms), refreshing its recency. */
  get(key: string, now: number): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.until <= now) {
      this.map.delete(key);
      return undefined;
    }
    if (this.clock - e.at >= this.fresh) {
      this.map.delete(key);
      this.map.set(key, e);
      e.at = ++this.clock;
    }
    return e.value;
  }

  /** Stores `value` until `until` (ms since epoch), evicting the least recently used entry when full. */
  set(key: string, value: V, until: number): void {
    this.map.delete(key);
    this.map.set(key, { value, until, at: ++this.clock });
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
