/**
 * Deferred sessions: a session the gateway opened itself, answering a client's `initialize`
 * while the caller had no upstream grant. The client's `initialize` parameters are kept; the
 * first request that carries a credential starts the upstream session by replaying them
 * (`initialize` + `notifications/initialized`), and from then on the client's session id stands
 * for the upstream's.
 *
 * Records live in the store (namespace `mcp-deferred-sessions`), so every gateway instance can
 * continue a session another one opened; a small in-process cache saves the store read on each
 * request once the upstream session exists.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management
 */
import { randomBytes } from "node:crypto";
import type { Store } from "../store/types.js";

/** Prefix of the raw id of a deferred session (the client sees it bound: `<raw>.<tag>`). */
export const DEFERRED_SESSION_PREFIX = "tollgate-deferred-";
const NS = "mcp-deferred-sessions";
/** Lifetime of a record since its last write. */
export const DEFERRED_SESSION_TTL_SECONDS = 24 * 3600;
const CACHE_MAX = 10_000;

export interface DeferredSession {
  routeId: string;
  sub: string;
  /** The client's `initialize` params, replayed to the upstream. */
  initialize: Record<string, unknown>;
  /** The upstream's session id once started ("" when the upstream runs without sessions). */
  upstreamSid?: string;
}

/** True when a raw (unbound) session id names a deferred session. */
export function isDeferredSession(raw: string): boolean {
  return raw.startsWith(DEFERRED_SESSION_PREFIX);
}

/** The deferred sessions of one store. */
export class DeferredSessions {
  private readonly started = new Map<string, string>();
  private readonly inFlight = new Map<string, Promise<string>>();
  constructor(private readonly store: Store) {}

  /** Opens a deferred session and returns its raw id. */
  async open(routeId: string, sub: string, initialize: Record<string, unknown>): Promise<string> {
    const raw = `${DEFERRED_SESSION_PREFIX}${randomBytes(18).toString("base64url")}`;
    await this.store.put<DeferredSession>(NS, raw, { routeId, sub, initialize }, { ttlSeconds: DEFERRED_SESSION_TTL_SECONDS });
    return raw;
  }

  /** The record, when it exists and belongs to this route and caller. */
  async get(raw: string, routeId: string, sub: string): Promise<DeferredSession | undefined> {
    const rec = await this.store.get<DeferredSession>(NS, raw);
    if (!rec || rec.value.routeId !== routeId || rec.value.sub !== sub) return undefined;
    return rec.value;
  }

  /**
   * The upstream session id for `raw`, starting the upstream session with `start` when none
   * exists yet: once per process at a time, and across instances under a store lock (the record
   * is read again after the lock is taken). Undefined when the session is unknown.
   */
  async upstreamSession(
    raw: string,
    routeId: string,
    sub: string,
    start: (initialize: Record<string, unknown>) => Promise<string>,
  ): Promise<string | undefined> {
    const known = this.started.get(raw);
    if (known !== undefined) return known;
    let p = this.inFlight.get(raw);
    if (!p) {
      p = this.store
        .withLock(`${NS}:${raw}`, async () => {
          const rec = await this.store.get<DeferredSession>(NS, raw);
          if (!rec || rec.value.routeId !== routeId || rec.value.sub !== sub) throw new UnknownDeferredSession();
          if (rec.value.upstreamSid !== undefined) return rec.value.upstreamSid;
          const upstreamSid = await start(rec.value.initialize);
          await this.store.put<DeferredSession>(NS, raw, { ...rec.value, upstreamSid }, { ttlSeconds: DEFERRED_SESSION_TTL_SECONDS });
          return upstreamSid;
        }, { waitMs: 30_000, leaseMs: 60_000 })
        .finally(() => this.inFlight.delete(raw));
      this.inFlight.set(raw, p);
    }
    try {
      const sid = await p;
      if (this.started.size >= CACHE_MAX) this.started.delete(this.started.keys().next().value!);
      this.started.set(raw, sid);
      return sid;
    } catch (err) {
      if (err instanceof UnknownDeferredSession) return undefined;
      throw err;
    }
  }

  /** The upstream session id if the session has one already (no start). */
  async current(raw: string, routeId: string, sub: string): Promise<string | undefined> {
    return this.started.get(raw) ?? (await this.get(raw, routeId, sub))?.upstreamSid;
  }

  /** Ends the session (DELETE, or the upstream forgot it). */
  async drop(raw: string): Promise<void> {
    this.started.delete(raw);
    await this.store.delete(NS, raw);
  }
}

class UnknownDeferredSession extends Error {}

const byStore = new WeakMap<Store, DeferredSessions>();

/** The deferred sessions of `store` (one instance per store, shared by the policy and the proxy). */
export function deferredSessions(store: Store): DeferredSessions {
  let d = byStore.get(store);
  if (!d) byStore.set(store, (d = new DeferredSessions(store)));
  return d;
}
