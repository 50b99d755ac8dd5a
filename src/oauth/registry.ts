/**
 * The gateway's upstream OAuth state: every upstream a token-exchange policy configured, and
 * the one grant manager they share. Policies fill it at build time; the connect and connections
 * pages read it per request (so a rebuilt gateway's policies replace their entries).
 */
import type { GatewayServices } from "../pipeline/services.js";
import { GrantManager, grantKey, type GrantMeta } from "./grants.js";
import type { TokenSet } from "./flow.js";
import type { UpstreamOAuth } from "./upstream.js";

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
      grants: new GrantManager({ store: services.store, secrets: services.secrets, log: services.log, now: () => services.now() }),
    };
    states.set(services, s);
  }
  return s;
}

/** `<publicUrl><basePath>` without a trailing slash. */
export function gatewayBase(services: GatewayServices): string {
  return `${services.settings.publicUrl.replace(/\/+$/, "")}${services.settings.basePath}`;
}

/** The redirect URI the upstream sends the browser back to. */
export function callbackUrl(services: GatewayServices, id: string): string {
  return `${gatewayBase(services)}/connections/${encodeURIComponent(id)}/callback`;
}

/** The URL of the upstream's Client ID Metadata Document (its client_id). */
export function clientMetadataUrl(services: GatewayServices, id: string): string {
  return `${gatewayBase(services)}/.well-known/oauth-client/${encodeURIComponent(id)}`;
}

/** The `authUrl` of a connect-required answer. */
export function connectUrl(services: GatewayServices, id: string, ticket: string): string {
  return `${gatewayBase(services)}/connections/${encodeURIComponent(id)}/connect?ticket=${encodeURIComponent(ticket)}`;
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
  services.log.info(
    { audit: "connection.established", upstream: entry.id, mode: meta.mode, subject: meta.subject, connectedBy: p.connectedBy, scopes: p.scopes },
    "upstream connection established",
  );
  if (previous?.secret.refreshToken && previous.secret.refreshToken !== tokens.refreshToken) {
    void entry.oauth.revoke(previous.meta, previous.secret.refreshToken, "refresh_token");
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
  services.log.info(
    { audit: "connection.revoked", upstream: entry.id, mode: g.meta.mode, subject: g.meta.subject, by, revokedUpstream: revoked },
    "upstream connection removed",
  );
  return true;
}
