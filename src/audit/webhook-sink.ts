/**
 * The webhook sink: audit events POSTed as JSON arrays (batches of up to 100, at least once a
 * second while events arrive) to an operator's collector. Bounded queue, 5 s timeout per batch,
 * no retries (a failed batch is logged and counted as dropped); the request path never waits.
 */
import { request, type Dispatcher } from "undici";
import type { Logger } from "../log.js";
import type { AuditSink, TimedAuditEvent } from "./audit.js";
import { BatchQueue } from "./queue.js";

export interface WebhookSinkOptions {
  url: string;
  /** Sent as `Authorization: Bearer <token>` when set. */
  token?: string | undefined;
  log: Logger;
  dispatcher?: Dispatcher;
}

export class WebhookAuditSink implements AuditSink {
  readonly name = "webhook";
  readonly queue: BatchQueue;
  constructor(o: WebhookSinkOptions) {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    this.queue = new BatchQueue({
      name: this.name,
      log: o.log,
      send: async (batch) => {
        const res = await request(o.url, {
          method: "POST",
          headers,
          body: JSON.stringify(batch),
          headersTimeout: 5000,
          bodyTimeout: 5000,
          ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
        });
        await res.body.dump();
        if (res.statusCode >= 300) throw new Error(`webhook answered ${res.statusCode}`);
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
