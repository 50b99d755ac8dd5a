/**
 * The store sink: audit events kept in the gateway's own store (namespace `audit`, one record
 * per event, expiring after the retention period), so `tollgate audit` and the admin endpoint
 * can list recent events without a log pipeline. Keys sort newest first.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "../log.js";
import type { Store } from "../store/types.js";
import type { AuditSink, TimedAuditEvent } from "./audit.js";
import { BatchQueue } from "./queue.js";

export const AUDIT_NS = "audit";
/** Keys are `<inverted ms, 15 digits>.<random>` so the store's key order is newest first. */
const TOP = 999_999_999_999_999;

export function auditKey(time: number): string {
  return `${String(TOP - time).padStart(15, "0")}.${randomBytes(4).toString("hex")}`;
}

export class StoreAuditSink implements AuditSink {
  readonly name = "store";
  readonly queue: BatchQueue;
  constructor(store: Store, retentionDays: number, log: Logger) {
    const ttlSeconds = Math.round(retentionDays * 86_400);
    this.queue = new BatchQueue({
      name: this.name,
      log,
      send: async (batch) => {
        for (const e of batch) await store.put(AUDIT_NS, auditKey(e.time), e, { ttlSeconds });
      },
    });
  }
  write(e: TimedAuditEvent): void {
    this.queue.push(e);
  }
  close(): Promise<void> {
    return this.queue.close();
  }
}

/** Filters for {@link queryAudit}; each given field must match exactly. */
export interface AuditQuery {
  subjectId?: string | undefined;
  upstreamServerId?: string | undefined;
  capabilityName?: string | undefined;
  outcome?: string | undefined;
  event?: string | undefined;
  /** Most events returned (default 100). */
  limit?: number | undefined;
}

/** Newest events first, matching every given filter. Scans at most 50,000 records. */
export async function queryAudit(store: Store, q: AuditQuery): Promise<TimedAuditEvent[]> {
  const limit = q.limit ?? 100;
  const records = await store.list<TimedAuditEvent>(AUDIT_NS, undefined, 50_000);
  const out: TimedAuditEvent[] = [];
  for (const r of records) {
    const e = r.value;
    if (q.subjectId !== undefined && e.subjectId !== q.subjectId) continue;
    if (q.upstreamServerId !== undefined && e.upstreamServerId !== q.upstreamServerId) continue;
    if (q.capabilityName !== undefined && e.capabilityName !== q.capabilityName) continue;
    if (q.outcome !== undefined && e.outcome !== q.outcome) continue;
    if (q.event !== undefined && e.event !== q.event) continue;
    out.push(e);
    if (out.length >= limit) break;
  }
  return out;
}
