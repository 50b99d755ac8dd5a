/**
 * The audit trail: every event becomes one structured log line with a stable `event` key (at
 * `info`, so a log pipeline keeps them by default), goes to the optional sinks (store table,
 * webhook) and feeds the MCP metrics. Handed to the gateway through `services.audit`.
 *
 * Emitting never blocks and never throws: sinks queue in memory and write in the background.
 */
import { writeFlat, type FlatShape, type Logger } from "../log.js";
import type { AuditEvent } from "./events.js";
import { drainObservations } from "./observation.js";

/** An event as sinks receive it: the event plus its time (ms since epoch). */
export type TimedAuditEvent = AuditEvent & { time: number };

/** Somewhere events are kept beyond the logs. `write` must return at once. */
export interface AuditSink {
  readonly name: string;
  write(event: TimedAuditEvent): void;
  /** Writes what is queued and stops. */
  close(): Promise<void>;
}

export type AuditLevel = "info" | "debug" | "warn";

export interface Audit {
  /**
   * Records one event. Cheap when nothing listens (log level above `level`, no sink). `msg`
   * becomes the log line's `msg` (the request event of an MCP route is its access line, `request`).
   * `at` (ms since the epoch) is when the event happened, for one emitted after the fact; its log
   * line and sinks carry that time. Any event emitted outside the queue of observations first
   * writes the queued ones (`drainObservations`): the trail stays in the order things happened.
   * `shape` is the event's layout when it has a fixed one (request events): its log line is then
   * written from a plan ({@link FlatShape}).
   */
  emit(event: AuditEvent, level?: AuditLevel, msg?: string, at?: number, shape?: FlatShape<AuditEvent>): void;
  /** Adds a listener that sees every event (metrics); listeners must not throw. */
  listen(fn: (event: AuditEvent) => void): void;
  readonly sinks: readonly AuditSink[];
  /** The logger events are written to. */
  readonly log: Logger;
  /** Writes the events still to come of requests already answered, then closes the sinks. */
  close(): Promise<void>;
}

/** Creates the audit trail over a logger and zero or more sinks. */
export function createAudit(opts: { log: Logger; sinks?: AuditSink[]; now?: () => number }): Audit {
  const { log } = opts;
  const sinks = opts.sinks ?? [];
  const listeners: Array<(event: AuditEvent) => void> = [];
  const now = opts.now ?? Date.now;
  return {
    sinks,
    log,
    emit(event, level = "info", msg, at, shape) {
      drainObservations();
      for (const l of listeners) l(event);
      // Events are flat objects of scalars: a key-name check replaces pino's path redaction.
      writeFlat(log, level, event, msg, at, shape);
      if (sinks.length && level !== "debug") {
        // A field-by-field copy: spreading an object and adding a field costs far more on V8.
        const timed = {} as TimedAuditEvent;
        for (const k in event) timed[k] = event[k];
        timed.time = at ?? now();
        for (const s of sinks) s.write(timed);
      }
    },
    listen(fn) {
      listeners.push(fn);
    },
    async close() {
      // Requests already answered may still have events to write (observation.ts queues them).
      drainObservations();
      await Promise.all(sinks.map((s) => s.close().catch((err) => log.warn({ err, sink: s.name }, "audit sink failed to close"))));
    },
  };
}

/** Emits through `services.audit`, or writes the event as a log line where no trail is set up. */
export function emitAudit(services: { audit?: Audit | undefined; log: Logger }, event: AuditEvent, level: AuditLevel = "info"): void {
  if (services.audit) services.audit.emit(event, level);
  else writeFlat(services.log, level, event);
}
