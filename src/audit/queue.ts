/**
 * A bounded in-memory queue drained in batches in the background: what audit sinks use so that
 * recording an event never waits for a store or a network. When the queue is full the oldest
 * events are dropped and counted (a slow sink must not grow memory without bound).
 */
import type { Logger } from "../log.js";
import type { TimedAuditEvent } from "./audit.js";

export interface BatchQueueOptions {
  name: string;
  /** Writes one batch; a rejection is logged and the batch is dropped (no retry storm). */
  send(batch: TimedAuditEvent[]): Promise<void>;
  log: Logger;
  maxQueue?: number;
  batchSize?: number;
  flushMs?: number;
}

export class BatchQueue {
  readonly #o: Required<BatchQueueOptions>;
  #queue: TimedAuditEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;
  /** Events dropped because the queue was full, or their batch failed. */
  dropped = 0;

  constructor(o: BatchQueueOptions) {
    this.#o = { maxQueue: 10_000, batchSize: 100, flushMs: 1000, ...o };
  }

  push(e: TimedAuditEvent): void {
    if (this.#closed) return;
    if (this.#queue.length >= this.#o.maxQueue) {
      this.#queue.shift();
      this.dropped++;
    }
    this.#queue.push(e);
    if (this.#queue.length >= this.#o.batchSize) this.#kick();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.#kick(), this.#o.flushMs);
      this.#timer.unref();
    }
  }

  #kick(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#running ??= this.#drain().finally(() => {
      this.#running = undefined;
      if (this.#queue.length && !this.#closed) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length) {
      const batch = this.#queue.splice(0, this.#o.batchSize);
      try {
        await this.#o.send(batch);
      } catch (err) {
        this.dropped += batch.length;
        this.#o.log.warn({ sink: this.#o.name, events: batch.length, err: { message: (err as Error).message } }, "audit sink could not write a batch; dropped");
      }
    }
  }

  /** Writes everything queued, then refuses new events. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
    await this.#drain();
  }

  /** Resolves once everything queued so far is written (tests, CLI). */
  async flush(): Promise<void> {
    await this.#running;
    await this.#drain();
  }
}
