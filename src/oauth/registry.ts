/**
 * The gateway's upstream OAuth state: every upstream a token-exchange policy configured, and
 * the one grant manager they share. Policies fill it at build time; the connect and connections
 * pages read it per request (so a rebuilt gateway's policies replace their entries).
 */
import type { GatewayServices } from "../pipeline/services.js";
import { issueTicket, type TicketData } from "./connect-state.js";
import { GrantManager, grantKey, type GrantMeta } from "./grants.js";
import type { TokenSet } from "./flow.js";
import type { UpstreamOAuth } from "./upstream.js";
import { emitAudit } from "../audit/audit.js";
import { AuditEvents } from "../audit/events.js";
import { elicitations } from "../mcp/elicitations.js";

/** One configured upstream. */
export interface UpstreamEntry {
  id: string;
  displayName: string;
  summary: string | undefined;
  authMode: "user-oauth" | "shared-oauth";
  oauth: UpstreamOAuth;
  /** Routes (operationIds) that use it. */
  operationIds: string[];
}

/** Per-gateway upstream OAuth state. */
export interface UpstreamOAuthState {
  upstreams: Map<string, UpstreamEntry>;
  grants: GrantManager;
}

const states = new WeakMap<GatewayServices, UpstreamOAuthState>();

/** The state of a gateway's services (created on first use). */
export function upstreamOAuthState(services: GatewayServices): UpstreamOAuthState {
  let s = states.get(services);
  if (!s) {
    s = {
      upstreams: new Map(),
      // The clock is read through `services` so tests that move it also move grant expiry.
      grants: new GrantManager({ store: services.store, secrets: services.secrets, log: services.log, audit: services.audit, now: () => services.now() }),
    };
    states.set(services, s);
  }
  return s;
}

/** `<publicUrl><basePath>` without a trailing slash. */
export function gatewayBase(services: GatewayServices): string {
  return `${services.settings.publicUrl.replace(/\/+$/, "")}${services.settings.basePath}`;
}

/** The redirect URI the upstream sends the browser back to (`B/auth/connections/{id}/callback`). */
export function callbackUrl(services: GatewayServices, id: string): string {
  return `${gatewayBase(services)}/auth/connections/${encodeURIComponent(id)}/callback`;
}

/** The auth profile id of an upstream: `<id>:<authMode>` (connect-required answers, CIMD URL). */
export function authProfileId(id: string, authMode: string): string {
  return `${id}:${authMode}`;
}

/**
 * The URL of the upstream's Client ID Metadata Document (its client_id):
 * `B/.well-known/oauth-client/{id}?authProfileId=<id>:<authMode>`.
 */
export function clientMetadataUrl(services: GatewayServices, id: string, authMode: string): string {
  const q = new URLSearchParams({ authProfileId: authProfileId(id, authMode) });
  return `${gatewayBase(services)}/.well-known/oauth-client/${encodeURIComponent(id)}?${q}`;
}

/**
 * The `authUrl` of a connect-required answer:
 * `B/auth/connections/{id}/connect?redirect=true&operationId=…&browserTicket=…`.
 */
export function connectUrl(services: GatewayServices, id: string, ticket: string, operationId: string): string {
  const q = new URLSearchParams({ redirect: "true", operationId, browserTicket: ticket });
  return `${gatewayBase(services)}/auth/connections/${encodeURIComponent(id)}/connect?${q}`;
}

/**
 * Issues a connect ticket bound to (subject, upstream, route) and returns its connect URL: the
 * `authUrl` of connect-required answers, and the consent page's Connect buttons.
 */
export async function mintConnectUrl(
  services: GatewayServices,
  entry: UpstreamEntry,
  t: Omit<TicketData, "upstreamId" | "createdAt">,
): Promise<string> {
  const ticket = await issueTicket(services.store, { ...t, upstreamId: entry.id, createdAt: services.now() });
  return connectUrl(services, entry.id, ticket, t.operationId);
}

/** True for a path (with query) on the gateway's own origin: `/…`, never `//host` or `/\host`. */
export function isSameOriginPath(services: GatewayServices, value: string): boolean {
  if (!/^\/(?![/\\])/.test(value) || value.length > 2048 || /[\u0000-\u001f\\]/.test(value)) return false;
  const origin = new URL(services.settings.publicUrl).origin;
  try {
    return new URL(value, origin).origin === origin;
  } catch {
    return false;
  }
}

/**
 * A connect URL for `subject` and one of a route's per-user upstreams, minted like the
 * connect-required answers do (same ticket, bound to the subject, the upstream and the route
 * `operationId`). With `returnTo` (a same-origin path, e.g. the consent page), the browser comes
 * back there once connected. Throws for unknown or shared upstreams and unsafe `returnTo` values.
 */
export async function connectUrlFor(
  services: GatewayServices,
  upstreamId: string,
  subject: string,
  operationId: string,
  returnTo?: string,
): Promise<string> {
  const entry = upstreamOAuthState(services).upstreams.get(upstreamId);
  if (!entry || entry.authMode !== "user-oauth") throw new Error(`no per-user upstream "${upstreamId}" is configured`);
  if (returnTo !== undefined && !isSameOriginPath(services, returnTo)) throw new Error("returnTo must be a same-origin path");
  return mintConnectUrl(services, entry, { subject, operationId, scopes: undefined, reason: "authenticating", stepUps: 0, returnTo });
}

/** The grant key of an upstream for a subject (user mode) or the shared grant. */
export function entryGrantKey(entry: UpstreamEntry, subject: string | undefined): string {
  return entry.authMode === "shared-oauth" ? grantKey(entry.id, undefined) : grantKey(entry.id, subject);
}

/** Stores a freshly connected grant (replacing any previous one) and writes the audit line. */
export async function storeNewGrant(
  services: GatewayServices,
  entry: UpstreamEntry,
  p: { subject: string | undefined; connectedBy: string; issuer: string; clientId: string; resource: string; scopes: string[]; stepUps: number },
  tokens: TokenSet,
): Promise<void> {
  const state = upstreamOAuthState(services);
  const key = entryGrantKey(entry, p.subject);
  const meta: GrantMeta = {
    upstreamId: entry.id,
    mode: entry.authMode === "shared-oauth" ? "shared" : "user",
    subject: p.subject ?? p.connectedBy,
    issuer: p.issuer,
    clientId: p.clientId,
    resource: p.resource,
    scopes: p.scopes,
    grantedScope: tokens.scope,
    expiresAt: tokens.expiresAt,
    obtainedAt: services.now(),
    hasRefreshToken: tokens.refreshToken !== undefined,
    createdAt: services.now(),
    refreshedAt: undefined,
    stepUps: p.stepUps,
  };
  const previous = await state.grants.read(key).catch(() => undefined);
  await state.grants.write(key, meta, tokens);
  await state.grants.clearDropped(key);
  emitAudit(services, {
    event: AuditEvents.upstreamConnectionEstablished,
    upstreamServerId: entry.id,
    subjectId: meta.subject,
    upstreamAuthMode: meta.mode,
    connectedBy: p.connectedBy,
    scopes: p.scopes.join(" "),
  });
  if (previous?.secret.refreshToken && previous.secret.refreshToken !== tokens.refreshToken) {
    void entry.oauth.revoke(previous.meta, previous.secret.refreshToken, "refresh_token");
  }
  // The MCP sessions that were asked to connect get `notifications/elicitation/complete`.
  if (p.subject !== undefined) {
    await elicitations(services.store)
      .completed(entry.id, p.subject)
      .catch((err: unknown) => services.log.warn({ upstream: entry.id, err }, "could not hand over the elicitation completions"));
  }
}

/**
 * Disconnects: deletes the grant, then revokes its tokens upstream where supported (RFC 7009).
 * Returns false when there was nothing to disconnect.
 * @see https://www.rfc-editor.org/rfc/rfc7009
 */
export async function disconnectGrant(
  services: GatewayServices,
  entry: UpstreamEntry,
  subject: string | undefined,
  by: string,
): Promise<boolean> {
  const state = upstreamOAuthState(services);
  const key = entryGrantKey(entry, subject);
  const g = await state.grants.remove(key);
  if (!g) return false;
  let revoked = false;
  if (g.secret.refreshToken) revoked = await entry.oauth.revoke(g.meta, g.secret.refreshToken, "refresh_token");
  if (g.secret.accessToken) revoked = (await entry.oauth.revoke(g.meta, g.secret.accessToken, "access_token")) || revoked;
  emitAudit(services, {
    event: AuditEvents.upstreamConnectionRevoked,
    upstreamServerId: entry.id,
    subjectId: g.meta.subject,
    upstreamAuthMode: g.meta.mode,
    by,
    revokedUpstream: revoked,
  });
  return true;
}
