/**
 * `notifications/elicitation/complete` for the connect-required answers: when a request of an MCP
 * session got `-32042` with an `elicitationId` and the user then connects the upstream, the
 * session's open server-to-client stream (the standalone GET stream) receives
 * `{"method":"notifications/elicitation/complete","params":{"elicitationId":…}}`, so the client
 * can retry without waiting for the user to tell it.
 *
 * The connect callback may run in another process or instance than the one holding the stream,
 * so the hand-over goes through the store (namespace `mcp-elicitations`):
 *
 * - **issued** (when the connect-required answer is made): `p:<upstream>:<subject>:<session>:<id>`,
 *   one record per elicitation id, for an hour;
 * - **completed** (when a grant for that upstream and subject is stored): the pending records of
 *   every session of that subject are moved to an outbox, `o:<session>:<id>`, for ten minutes;
 * - **delivered**: a process holding open streams looks at the outbox every {@link POLL_MS} (one
 *   `list` over a short-lived prefix, whatever the number of streams), and at once when a stream
 *   opens or a connection completes in the process itself; it `take`s the records of its own
 *   sessions (so exactly one process delivers each) and writes the notifications to the stream.
 *
 * `<session>` is the SHA-256 of the route, the caller's subject and the client-facing session id:
 * the store holds no session ids, and only a stream of the same caller on the same route matches.
 * Delivery is at most once: a stream that breaks while the notification is written loses it (the
 * notification is optional in the protocol; clients keep a manual retry).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation#completion-notifications-for-url-mode-elicitation
 * @see ../../docs/mcp-transport.md#connect-completion-notifications
 */
import { createHash } from "node:crypto";
import type { Logger } from "../log.js";
import type { Store } from "../store/types.js";

export const ELICITATIONS_NS = "mcp-elicitations";
/** How long an issued elicitation waits for its connection. */
export const PENDING_TTL_SECONDS = 3600;
/** How long a completed elicitation waits for a stream of its session to open. */
export const OUTBOX_TTL_SECONDS = 600;
/** Interval of the outbox look while the process holds at least one stream. */
export const POLL_MS = 2000;
/** Most notifications one session gets for one completed connection (the newest ids). */
export const MAX_IDS_PER_SESSION = 16;
/** Most outbox records one look reads. */
const LIST_LIMIT = 500;
/** Length of a session key (base64url SHA-256). */
const SESSION_KEY_LENGTH = 43;
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

const enc = encodeURIComponent;

/** The store key of a session of `sub` on `routeId` (the session id as the client sends it). */
export function sessionKey(routeId: string, sub: string, clientSid: string): string {
  return createHash("sha256").update(`${routeId.length}:${routeId}${sub.length}:${sub}${clientSid}`).digest("base64url");
}

/** The SSE event carrying one completion notification. */
export function completionEvent(elicitationId: string): string {
  return `event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/elicitation/complete", params: { elicitationId } })}\n\n`;
}

interface PendingRecord {
  at: number;
}

type Deliver = (ids: string[]) => void;

/** The elicitation hand-over of one store, as seen by one process. */
export class Elicitations {
  /** Interval of the outbox look (tests shorten it). */
  pollMs = POLL_MS;
  readonly #streams = new Map<string, Deliver[]>();
  #timer: NodeJS.Timeout | undefined;
  #looking: Promise<void> | undefined;
  #again = false;

  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  /** Remembers that `elicitationId` went to `session` and is complete once `subject` connects `upstreamId`. */
  async issued(upstreamId: string, subject: string, session: string, elicitationId: string): Promise<void> {
    if (!ID_RE.test(elicitationId)) return;
    await this.store.put<PendingRecord>(ELICITATIONS_NS, `p:${enc(upstreamId)}:${enc(subject)}:${session}:${elicitationId}`, { at: this.now() }, { ttlSeconds: PENDING_TTL_SECONDS });
  }

  /**
   * `subject` has connected `upstreamId`: every elicitation issued for it moves to the outbox of
   * its session (the newest {@link MAX_IDS_PER_SESSION} per session), and this process looks at
   * once for streams of its own.
   */
  async completed(upstreamId: string, subject: string): Promise<void> {
    const prefix = `p:${enc(upstreamId)}:${enc(subject)}:`;
    const bySession = new Map<string, Array<{ id: string; at: number }>>();
    for (const r of await this.store.list<PendingRecord>(ELICITATIONS_NS, prefix, 10 * LIST_LIMIT)) {
      const rest = r.key.slice(prefix.length);
      const session = rest.slice(0, SESSION_KEY_LENGTH);
      const id = rest.slice(SESSION_KEY_LENGTH + 1);
      const taken = await this.store.take<PendingRecord>(ELICITATIONS_NS, r.key);
      if (!taken || !ID_RE.test(id)) continue;
      const list = bySession.get(session) ?? [];
      list.push({ id, at: taken.value.at });
      bySession.set(session, list);
    }
    for (const [session, list] of bySession) {
      list.sort((a, b) => a.at - b.at);
      for (const { id, at } of list.slice(-MAX_IDS_PER_SESSION)) {
        await this.store.put<PendingRecord>(ELICITATIONS_NS, `o:${session}:${id}`, { at }, { ttlSeconds: OUTBOX_TTL_SECONDS });
      }
    }
    if (bySession.size > 0 && this.#streams.size > 0) await this.look();
  }

  /**
   * Attaches an open stream of `session`: `deliver` receives completed elicitation ids (the most
   * recently attached stream of a session gets them). Looks at the session's outbox at once.
   * Returns the detach function.
   */
  attach(session: string, deliver: Deliver, log?: Logger): () => void {
    const list = this.#streams.get(session) ?? [];
    list.push(deliver);
    this.#streams.set(session, list);
    this.#timer ??= setInterval(() => void this.look().catch((err: unknown) => log?.warn({ err }, "elicitation outbox look failed")), this.pollMs).unref();
    void this.#lookAt(`o:${session}:`).catch((err: unknown) => log?.warn({ err }, "elicitation outbox look failed"));
    return () => {
      const l = this.#streams.get(session);
      if (!l) return;
      const i = l.indexOf(deliver);
      if (i >= 0) l.splice(i, 1);
      if (l.length === 0) this.#streams.delete(session);
      if (this.#streams.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  /** Open streams attached in this process. */
  get attached(): number {
    let n = 0;
    for (const l of this.#streams.values()) n += l.length;
    return n;
  }

  /** One look at the whole outbox (one at a time; a request during a look runs once more after it). */
  look(): Promise<void> {
    if (this.#looking) {
      this.#again = true;
      return this.#looking;
    }
    this.#looking = (async () => {
      try {
        do {
          this.#again = false;
          await this.#lookAt("o:");
        } while (this.#again);
      } finally {
        this.#looking = undefined;
      }
    })();
    return this.#looking;
  }

  async #lookAt(prefix: string): Promise<void> {
    if (this.#streams.size === 0) return;
    const rows = await this.store.list<PendingRecord>(ELICITATIONS_NS, prefix, LIST_LIMIT);
    const due = new Map<string, string[]>();
    for (const r of rows) {
      const session = r.key.slice(2, 2 + SESSION_KEY_LENGTH);
      if (!this.#streams.has(session)) continue;
      if (!(await this.store.take(ELICITATIONS_NS, r.key))) continue; // another process delivered it
      const ids = due.get(session) ?? [];
      ids.push(r.key.slice(3 + SESSION_KEY_LENGTH));
      due.set(session, ids);
    }
    for (const [session, ids] of due) this.#streams.get(session)?.at(-1)?.(ids);
  }
}

const byStore = new WeakMap<Store, Elicitations>();

/** The elicitation hand-over of `store` in this process (shared by the policy, the proxy and the connect callback). */
export function elicitations(store: Store): Elicitations {
  let e = byStore.get(store);
  if (!e) byStore.set(store, (e = new Elicitations(store)));
  return e;
}
