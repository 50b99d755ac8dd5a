/**
 * Upstream grants: stored encrypted (AES-256-GCM, the record's address as AAD), used from an
 * in-process cache on the hot path, refreshed single-flight.
 *
 * - Warm path: a fresh access token comes from a bounded in-memory cache — no store round trip,
 *   no decryption.
 * - Refresh (proactive, `skewMs` before expiry, or after an upstream 401): one refresh per grant
 *   at a time inside the process (a shared promise) and across processes (`store.withLock`, then
 *   the grant is re-read and written back with compare-and-swap on its version). The rotated
 *   refresh token is saved in the same write as the new access token.
 * - A refresh token is never presented twice when the first use may have rotated it: before
 *   calling the token endpoint the holder writes an in-flight mark (namespace
 *   `grant-refreshing`), cleared once the outcome is known. A process that finds the mark of a
 *   refresh that never finished (its holder was killed, or the answer was lost on the wire)
 *   cannot know whether the upstream rotated the token, so it drops the grant and asks the user
 *   to connect again — unless this upstream was seen not to rotate refresh tokens, in which
 *   case presenting the same token again is harmless.
 * - `invalid_grant` (including an authorization server that no longer knows the gateway's
 *   registered client) deletes the grant: the user must connect again. A freshly refreshed token
 *   the upstream still refuses does too ({@link GrantManager.dropRejected}). Token endpoint
 *   outages keep it and surface as 502.
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1#section-4.3 refresh token grant
 */
import { GatewayError } from "../errors.js";
import type { Logger } from "../log.js";
import type { SecretBox } from "../store/crypto.js";
import { openRecord, sealRecord, type SealedValue } from "../store/sealed.js";
import type { Store } from "../store/types.js";
import { TokenEndpointError, type TokenSet } from "./flow.js";
import { INSTANCE } from "../store/owner.js";
import { errorSummary } from "./upstream.js";
import { AuditEvents, type AuditEvent } from "../audit/events.js";
import type { Audit } from "../audit/audit.js";

/** The upstream id of a grant key (`<upstream>:user:<subject>` or `<upstream>:shared`). */
const upstreamOfKey = (key: string) => key.slice(0, key.indexOf(":") >>> 0);

/** Store namespace of grants. */
export const GRANTS_NS = "grants";
/** Store namespace remembering (for a day) that a grant was dropped and must be made again. */
export const TOMBSTONES_NS = "grant-tombstones";
/** Store namespace of refreshes in flight (see {@link RefreshMark}). */
export const REFRESHING_NS = "grant-refreshing";

/** Written before a refresh token is sent; cleared once the answer is known. */
interface RefreshMark {
  /** The grant version whose refresh token was sent. */
  grantVersion: number;
  /** Process instance that sent it. */
  instance: string;
  at: number;
}

/**
 * Record key of a grant: `<upstreamId>:user:<sub>` or `<upstreamId>:shared`. The upstream id is
 * percent-encoded (a no-op for ids of letters, digits, `.`, `_`, `-`), so an id derived from a
 * policy name that contains `:` can never make a user's key equal another upstream's shared key.
 */
export function grantKey(upstreamId: string, subject: string | undefined): string {
  const id = encodeURIComponent(upstreamId);
  return subject === undefined ? `${id}:shared` : `${id}:user:${subject}`;
}

/** Plaintext facts about a grant (never secret). */
export interface GrantMeta {
  upstreamId: string;
  mode: "user" | "shared";
  /** The user's subject (user mode) — or, for shared grants, the admin who connected it. */
  subject: string;
  issuer: string;
  clientId: string;
  resource: string;
  /** Scopes requested when connecting. */
  scopes: string[];
  /** Scope string the AS reported granting, if it did. */
  grantedScope: string | undefined;
  /** Access token expiry (ms since epoch), if known. */
  expiresAt: number | undefined;
  /** When the current access token was obtained (ms since epoch); older records lack it. */
  obtainedAt?: number | undefined;
  hasRefreshToken: boolean;
  createdAt: number;
  refreshedAt: number | undefined;
  /** Step-up authorizations performed for this grant (bounded). */
  stepUps: number;
  /** Whether the upstream's last refresh replaced the refresh token; unknown before the first. */
  rotatesRefreshToken?: boolean | undefined;
}

interface GrantSecret {
  accessToken: string;
  refreshToken: string | undefined;
  tokenType: string;
}

/** A decrypted grant. */
export interface Grant {
  key: string;
  version: number;
  meta: GrantMeta;
  secret: GrantSecret;
}

/** Outcome of asking for an upstream token. */
export type TokenResult =
  | { kind: "ok"; token: string }
  | { kind: "missing" }
  | { kind: "reconsent" };

/** Performs the actual refresh at the upstream. */
export type Refresher = (grant: Grant) => Promise<TokenSet>;

interface CacheEntry {
  token: string;
  version: number;
  expiresAt: number | undefined;
  obtainedAt: number | undefined;
  cachedAt: number;
}

export interface GrantManagerOptions {
  store: Store;
  secrets: SecretBox;
  log: Logger;
  /** Where connection events go (the log when absent). */
  audit?: Audit | undefined;
  now: () => number;
  /** Refresh this long before expiry (default 60 s). */
  skewMs?: number;
  /** Cache entries kept (default 10 000). */
  maxCache?: number;
  /**
   * How long a cached token is used before the store is consulted again (default 60 s), whatever
   * its expiry: a grant disconnected, reset or replaced through another instance stops being
   * used here within this time.
   */
  maxCacheAgeMs?: number;
}

/** Grants of every upstream of one gateway. */
export class GrantManager {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<TokenResult>>();
  private readonly skewMs: number;
  private readonly maxCache: number;
  private readonly maxAge: number;

  constructor(private readonly o: GrantManagerOptions) {
    this.skewMs = o.skewMs ?? 60_000;
    this.maxCache = o.maxCache ?? 10_000;
    this.maxAge = o.maxCacheAgeMs ?? 60_000;
  }

  /**
   * Fresh = not within the refresh skew of expiry. The skew is at most half the token's lifetime,
   * so tokens that live for seconds are not refreshed on every request.
   */
  private fresh(expiresAt: number | undefined, obtainedAt: number | undefined, cachedAt: number): boolean {
    const now = this.o.now();
    if (expiresAt === undefined) return now - cachedAt < this.maxAge;
    const lifetime = obtainedAt === undefined ? Infinity : expiresAt - obtainedAt;
    const skew = Math.min(this.skewMs, Math.max(0, lifetime / 2));
    return expiresAt - skew > now;
  }

  private remember(key: string, g: Grant): void {
    const prev = this.cache.get(key);
    if (prev && prev.version > g.version) return;
    this.cache.delete(key);
    this.cache.set(key, {
      token: g.secret.accessToken,
      version: g.version,
      expiresAt: g.meta.expiresAt,
      obtainedAt: g.meta.obtainedAt,
      cachedAt: this.o.now(),
    });
    if (this.cache.size > this.maxCache) this.cache.delete(this.cache.keys().next().value!);
  }

  /** Drops a cached token (disconnect, reset). */
  forget(key: string): void {
    this.cache.delete(key);
  }

  /** The cached token when it is fresh; the warm path. */
  cachedToken(key: string): string | undefined {
    const e = this.cache.get(key);
    if (!e || this.o.now() - e.cachedAt >= this.maxAge) return undefined;
    return this.fresh(e.expiresAt, e.obtainedAt, e.cachedAt) ? e.token : undefined;
  }

  /** Reads and decrypts a grant. */
  async read(key: string): Promise<Grant | undefined> {
    const rec = await this.o.store.get<SealedValue<GrantMeta>>(GRANTS_NS, key);
    if (!rec) return undefined;
    const secret = openRecord<GrantSecret>(this.o.secrets, GRANTS_NS, key, rec.value);
    const { sealed: _sealed, ...meta } = rec.value;
    return { key, version: rec.version, meta: meta as GrantMeta, secret };
  }

  /** Lists grant metadata under a key prefix (no decryption). */
  async listMeta(prefix: string): Promise<Array<{ key: string; version: number; meta: GrantMeta }>> {
    const rows = await this.o.store.list<SealedValue<GrantMeta>>(GRANTS_NS, prefix);
    return rows.map((r) => {
      const { sealed: _sealed, ...meta } = r.value;
      return { key: r.key, version: r.version, meta: meta as GrantMeta };
    });
  }

  /** Writes a grant (new connection or refresh). Returns the new version, or undefined on a CAS miss. */
  async write(key: string, meta: GrantMeta, tokens: TokenSet, ifVersion?: number): Promise<number | undefined> {
    const m: GrantMeta = {
      ...meta,
      obtainedAt: this.o.now(),
      expiresAt: tokens.expiresAt,
      grantedScope: tokens.scope ?? meta.grantedScope,
      hasRefreshToken: tokens.refreshToken !== undefined,
    };
    const secret: GrantSecret = { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, tokenType: tokens.tokenType };
    const value = sealRecord(this.o.secrets, GRANTS_NS, key, secret, m);
    const version = await this.o.store.put(GRANTS_NS, key, value, ifVersion === undefined ? {} : { ifVersion });
    if (version !== undefined) this.remember(key, { key, version, meta: m, secret });
    return version;
  }

  /** Deletes a grant and its cached token; returns what was there. */
  async remove(key: string): Promise<Grant | undefined> {
    let g: Grant | undefined;
    try {
      g = await this.read(key);
    } catch {
      g = undefined; // undecryptable records are still deleted
    }
    this.cache.delete(key);
    await this.o.store.delete(GRANTS_NS, key);
    return g;
  }

  /**
   * The upstream access token for a grant: from the cache when fresh; else from the store,
   * refreshing first when it expires within the skew.
   */
  async token(key: string, refresher: Refresher): Promise<TokenResult> {
    const hot = this.cachedToken(key);
    if (hot) return { kind: "ok", token: hot };
    const g = await this.read(key);
    if (!g) {
      this.cache.delete(key);
      return { kind: "missing" };
    }
    if (this.fresh(g.meta.expiresAt, g.meta.obtainedAt, this.o.now()) || (g.meta.expiresAt === undefined && !g.secret.refreshToken)) {
      this.remember(key, g);
      return { kind: "ok", token: g.secret.accessToken };
    }
    if (!g.secret.refreshToken) {
      // Expiring soon with no way to refresh: use it while it lasts, then ask for a new connection.
      if ((g.meta.expiresAt ?? 0) > this.o.now()) return { kind: "ok", token: g.secret.accessToken };
      return this.reconsent(key, g, "access token expired and no refresh token was issued");
    }
    return this.refresh(key, refresher, undefined);
  }

  /**
   * Refresh after the upstream rejected `usedToken` (401). If another request or process already
   * replaced that token, the replacement is returned without another refresh.
   */
  async refreshAfterRejection(key: string, usedToken: string, refresher: Refresher): Promise<TokenResult> {
    const e = this.cache.get(key);
    if (e && e.token === usedToken) this.cache.delete(key);
    return this.refresh(key, refresher, usedToken);
  }

  private refresh(key: string, refresher: Refresher, rejected: string | undefined): Promise<TokenResult> {
    const running = this.inflight.get(key);
    if (running) {
      this.o.audit?.emit({ event: AuditEvents.upstreamRefreshCoalesced, upstreamServerId: upstreamOfKey(key) }, "debug");
      return running;
    }
    const p = this.o.store
      .withLock(`grant-refresh:${key}`, () => this.refreshLocked(key, refresher, rejected), { waitMs: 20_000, leaseMs: 30_000 })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async refreshLocked(key: string, refresher: Refresher, rejected: string | undefined): Promise<TokenResult> {
    const g = await this.read(key);
    if (!g) {
      this.cache.delete(key);
      return { kind: "missing" };
    }
    const replaced = rejected !== undefined && g.secret.accessToken !== rejected;
    if (replaced || (rejected === undefined && this.fresh(g.meta.expiresAt, g.meta.obtainedAt, this.o.now()))) {
      // Another process refreshed while this one waited for the lock.
      this.o.audit?.emit({ event: AuditEvents.upstreamRefreshCoalesced, upstreamServerId: g.meta.upstreamId, subjectId: g.meta.subject }, "debug");
      this.remember(key, g);
      return { kind: "ok", token: g.secret.accessToken };
    }
    if (!g.secret.refreshToken) return this.reconsent(key, g, "upstream rejected the token and no refresh token was issued");
    const interrupted = await this.o.store.get<RefreshMark>(REFRESHING_NS, key);
    if (interrupted?.value.grantVersion === g.version && g.meta.rotatesRefreshToken !== false) {
      // This very refresh token was sent before and the answer never arrived: the upstream may
      // have rotated it. Presenting it again could spend a rotated token twice (and trip the
      // upstream's reuse detection); connecting again is the safe answer.
      await this.o.store.delete(REFRESHING_NS, key);
      return this.reconsent(key, g, "an earlier refresh of this grant was interrupted; its outcome is unknown");
    }
    const mark: RefreshMark = { grantVersion: g.version, instance: INSTANCE.id, at: this.o.now() };
    await this.o.store.put(REFRESHING_NS, key, mark, { ttlSeconds: 86_400 });
    let tokens: TokenSet;
    try {
      tokens = await refresher(g);
    } catch (err) {
      // An answer from the upstream (or a request that never left) settles the outcome; a lost
      // answer does not, and the mark stays for the next refresh to see.
      if (!outcomeUnknown(err)) await this.o.store.delete(REFRESHING_NS, key);
      if (err instanceof TokenEndpointError && err.kind === "invalid_grant") {
        // A new connection made while the refresh ran (it revokes the old refresh token) is
        // not the grant that was refused: keep it.
        const current = await this.read(key).catch(() => undefined);
        if (current && current.version !== g.version) {
          this.remember(key, current);
          return { kind: "ok", token: current.secret.accessToken };
        }
        this.emit({
          event: AuditEvents.upstreamRefreshFailed,
          upstreamServerId: g.meta.upstreamId,
          subjectId: g.meta.subject,
          upstreamAuthMode: g.meta.mode,
          reasonCode: err.oauthError ?? "invalid_grant",
          failureOrigin: "upstream",
        });
        return this.reconsent(key, g, `refresh rejected (${err.oauthError ?? "invalid_grant"})`);
      }
      this.o.log.warn({ upstream: g.meta.upstreamId, err: errorSummary(err) }, "upstream token refresh failed; grant kept");
      this.emit({
        event: AuditEvents.upstreamRefreshFailed,
        upstreamServerId: g.meta.upstreamId,
        subjectId: g.meta.subject,
        upstreamAuthMode: g.meta.mode,
        reasonCode: err instanceof GatewayError ? err.code : "upstream_token_endpoint_unavailable",
        failureOrigin: "upstream",
      });
      if (err instanceof GatewayError && err.status === 502) throw err;
      throw new GatewayError("upstream_token_endpoint_unavailable", 502, "The upstream authorization server is unavailable; try again shortly.", {
        cause: err,
      });
    }
    const rotated = tokens.refreshToken !== g.secret.refreshToken;
    const meta: GrantMeta = { ...g.meta, refreshedAt: this.o.now(), rotatesRefreshToken: rotated };
    const version = await this.write(key, meta, tokens, g.version);
    await this.o.store.delete(REFRESHING_NS, key);
    if (version === undefined) {
      // Someone wrote the grant although we held the lock (lease expired): trust the store.
      const now = await this.read(key);
      if (!now) return { kind: "missing" };
      this.remember(key, now);
      return { kind: "ok", token: now.secret.accessToken };
    }
    this.emit({
      event: AuditEvents.upstreamConnectionRefreshed,
      upstreamServerId: g.meta.upstreamId,
      subjectId: g.meta.subject,
      upstreamAuthMode: g.meta.mode,
      rotated,
    });
    return { kind: "ok", token: tokens.accessToken };
  }

  /**
   * Drops a grant whose access token `token` the upstream refused even right after a refresh,
   * and marks it for reconnection (as a rejected refresh does). A grant whose token has been
   * replaced meanwhile (another request, a new connection) is kept. Returns true when no grant
   * is left (the user must connect again).
   */
  async dropRejected(key: string, token: string, reason: string): Promise<boolean> {
    return this.o.store.withLock(
      `grant-refresh:${key}`,
      async () => {
        const g = await this.read(key).catch(() => undefined);
        if (!g) {
          this.cache.delete(key);
          return true;
        }
        if (g.secret.accessToken !== token) return false;
        await this.reconsent(key, g, reason);
        return true;
      },
      { waitMs: 20_000, leaseMs: 30_000 },
    );
  }

  /** True when the grant was dropped (refresh rejected) and not connected again since. */
  async wasDropped(key: string): Promise<boolean> {
    return (await this.o.store.get(TOMBSTONES_NS, key)) !== undefined;
  }

  /** Clears the dropped marker (a new connection was made). */
  async clearDropped(key: string): Promise<void> {
    await this.o.store.delete(TOMBSTONES_NS, key);
  }

  private emit(e: AuditEvent): void {
    if (this.o.audit) this.o.audit.emit(e);
    else this.o.log.info(e);
  }

  private async reconsent(key: string, g: Grant, reason: string): Promise<TokenResult> {
    this.cache.delete(key);
    await this.o.store.delete(GRANTS_NS, key);
    await this.o.store.put(TOMBSTONES_NS, key, { at: this.o.now() }, { ttlSeconds: 86_400 });
    this.emit({ event: AuditEvents.upstreamReconsentRequired, upstreamServerId: g.meta.upstreamId, subjectId: g.meta.subject, upstreamAuthMode: g.meta.mode, reason });
    return { kind: "reconsent" };
  }
}

/** Connection failures after which the request certainly never reached the token endpoint. */
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_CONNECT_TIMEOUT"]);

/**
 * True when a failed refresh may have been processed by the upstream without its answer
 * arriving (a timeout or a connection lost mid-request). An HTTP answer, an OAuth error and a
 * connection that never opened (or was refused by the SSRF guard) are known outcomes.
 */
export function outcomeUnknown(err: unknown): boolean {
  if (err instanceof TokenEndpointError && err.kind !== "temporary") return false;
  for (let e: unknown = err, depth = 0; typeof e === "object" && e !== null && depth < 8; depth++) {
    const { status, code, cause } = e as { status?: unknown; code?: unknown; cause?: unknown };
    if (typeof status === "number" && !(e instanceof GatewayError)) return false;
    if (typeof code === "string" && (NOT_SENT.has(code) || code === "upstream_url_blocked")) return false;
    e = cause;
  }
  return true;
}
