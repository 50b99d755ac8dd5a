/**
 * The setup page shown when an MCP client asks for authorization: first the route's per-user
 * upstreams that are not connected yet — connecting them is the main step, one large button
 * each, with the state of every upstream — then the approval. Approve is enabled only once
 * every per-user upstream is connected (the decision handler enforces the same), so the
 * client's first `initialize` finds its grants.
 *
 * Also shown: who is signed in (with sign-out), which application asks, where the browser goes
 * afterwards (its redirect host — the one thing a phishing client cannot fake), route and scope.
 * One form, CSRF-protected, with `decision` buttons; the page cannot be framed.
 */
import { GRANTS_NS, grantKey } from "../oauth/grants.js";
import { connectUrlFor } from "../oauth/registry.js";
import type { GatewayServices } from "../pipeline/services.js";
import type { UserInfo } from "../pipeline/types.js";
import { gatewayPaths } from "../routing/gateway-paths.js";
import { escapeHtml, htmlPage } from "../web/html.js";
import { accountLabel } from "../web/session.js";
import { isLoopbackRedirect } from "./clients.js";
import type { OAuthClient, ResourceConfig, UpstreamInfo } from "./types.js";

export interface UpstreamStatus extends UpstreamInfo {
  connected: boolean;
  /** Where the Connect button goes (undefined for shared upstreams). */
  connectUrl: string | undefined;
}

/** Whether `sub` has a grant for each upstream of the route (shared upstreams: the shared grant). */
export async function connectionStates(services: GatewayServices, rc: ResourceConfig, sub: string): Promise<Array<UpstreamInfo & { connected: boolean }>> {
  return Promise.all(
    rc.upstreams.map(async (u) => {
      const key = grantKey(u.id, u.authMode === "shared-oauth" ? undefined : sub);
      return { ...u, connected: (await services.store.get(GRANTS_NS, key)) !== undefined };
    }),
  );
}

/**
 * Connection state of each upstream of the route for `sub`, with Connect links for the missing
 * per-user ones: each carries a connect ticket for `sub` and the route; with `returnTo` (the
 * setup page), the browser comes back there once connected.
 */
export async function upstreamStatuses(services: GatewayServices, rc: ResourceConfig, sub: string, returnTo?: string): Promise<UpstreamStatus[]> {
  const fallback = `${services.settings.basePath}/connections`;
  return Promise.all(
    (await connectionStates(services, rc, sub)).map(async (u) => {
      if (u.authMode === "shared-oauth" || u.connected) return { ...u, connectUrl: undefined };
      let connectUrl = fallback;
      try {
        connectUrl = await connectUrlFor(services, u.id, sub, rc.route.operationId, returnTo);
      } catch (err) {
        services.log.warn({ err, upstream: u.id }, "could not create a connect link; linking to the connections page");
      }
      return { ...u, connectUrl };
    }),
  );
}

/** Per-user upstreams the user still has to connect before approving. */
export function missingConnections<T extends UpstreamInfo & { connected: boolean }>(upstreams: T[]): T[] {
  return upstreams.filter((u) => u.authMode === "user-oauth" && !u.connected);
}

export interface SetupView {
  services: GatewayServices;
  requestId: string;
  csrf: string;
  client: OAuthClient;
  redirectUri: string;
  resource: string;
  rc: ResourceConfig;
  scope: string;
  user: UserInfo;
  upstreams: UpstreamStatus[];
  /** Shown above the approval (e.g. why Approve was refused). */
  notice?: string | undefined;
  status?: number | undefined;
}

/** How the signed-in user is named on pages: e-mail, else name, else subject. */
export const userLabel = accountLabel;

function redirectDisplay(uri: string): string {
  const u = new URL(uri);
  return u.protocol === "http:" || u.protocol === "https:" ? u.host : `${u.protocol}//${u.host}`;
}

const rowData = (u: UpstreamStatus, state: string) => `data-upstream="${escapeHtml(u.id)}" data-state="${state}"`;

function upstreamRow(u: UpstreamStatus): string {
  const name = escapeHtml(u.displayName);
  if (u.authMode === "shared-oauth") {
    const badge = u.connected ? `<span class="badge">Shared connection</span>` : `<span class="badge off">Waiting for an administrator</span>`;
    return `<li class="upstream" ${rowData(u, u.connected ? "shared" : "shared-missing")}><div><strong>${name}</strong><div class="muted">Connected once for everyone by an administrator.</div></div>${badge}</li>`;
  }
  if (u.connected) {
    return `<li class="upstream done" ${rowData(u, "connected")}><div><strong>${name}</strong><div class="muted">Your account is connected.</div></div><span class="badge">✓ Connected</span></li>`;
  }
  return (
    `<li class="upstream todo" ${rowData(u, "not-connected")}><div><strong>${name}</strong><div class="muted">Not connected yet — sign in to ${name} ` +
    `to let this gateway act for you there.</div></div>` +
    `<a class="button big" href="${escapeHtml(u.connectUrl ?? "#")}" rel="noreferrer">Connect ${name}</a></li>`
  );
}

/** Renders the setup page. */
export function renderSetup(v: SetupView): Response {
  const paths = gatewayPaths(v.services.settings.basePath);
  const c = v.client;
  const name = c.clientName?.trim() || "An unnamed application";
  const missing = missingConnections(v.upstreams);
  const idNote =
    c.kind === "cimd"
      ? `Identified by its metadata at <span class="host">${escapeHtml(new URL(c.clientId).host)}</span>.`
      : c.kind === "static"
        ? "Registered by the gateway's administrator."
        : "The application named itself when it registered; the name is not verified.";
  // A metadata document proves who publishes it, not who receives the code: any program on the
  // user's machine can name a well-known client's document and a loopback port.
  // https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#localhost-redirect-uri-risks
  const loopbackWarning =
    c.kind === "cimd" && isLoopbackRedirect(v.redirectUri)
      ? `<p class="warn">The approval goes to a program on this computer, not to a website. Any program running ` +
        `here could have started this request under ${escapeHtml(name)}'s name: approve only if you started it ` +
        `from that application just now.</p>`
      : "";
  const total = v.upstreams.filter((u) => u.authMode === "user-oauth").length;
  const steps = v.upstreams.length
    ? `<section class="step${missing.length ? " current" : ""}"><h2>${missing.length ? "1. Connect your accounts" : "1. Accounts connected"}</h2>` +
      (missing.length
        ? `<p>${escapeHtml(v.rc.route.operationId)} works with ${total === 1 ? "this service" : "these services"} on your behalf. ` +
          `Connect ${missing.length === 1 ? "it" : "each one"} first; you come back here afterwards.</p>`
        : `<p class="muted">Every service this route uses is connected.</p>`) +
      `<ul class="list">${v.upstreams.map(upstreamRow).join("")}</ul></section>`
    : "";
  const approveNumber = v.upstreams.length ? "2. " : "";
  const blocked = missing.length > 0;
  const waiting = blocked
    ? `<p class="blocked" id="approve-help">Approve is available once ${missing.map((u) => escapeHtml(u.displayName)).join(", ")} ` +
      `${missing.length === 1 ? "is" : "are"} connected.</p>`
    : "";
  const notice = v.notice ? `<p class="warn" role="alert">${escapeHtml(v.notice)}</p>` : "";
  const scopes = v.scope ? ` · scope <code>${escapeHtml(v.scope)}</code>` : "";
  const approve =
    `<section class="step${blocked ? " later" : " current"}"><h2>${approveNumber}Allow ${escapeHtml(name)}</h2>` +
    notice +
    `<p>${escapeHtml(name)} asks to use <strong>${escapeHtml(v.rc.route.operationId)}</strong> as you. After you approve, ` +
    `you will be sent to <span class="host">${escapeHtml(redirectDisplay(v.redirectUri))}</span>. Only continue if you trust that address.</p>` +
    loopbackWarning +
    `<p class="muted">${idNote}</p>` +
    `<p class="muted">Route <code>${escapeHtml(v.resource)}</code>${scopes}</p>` +
    waiting +
    `<form method="post" action="${escapeHtml(paths.setup)}">` +
    `<input type="hidden" name="req" value="${escapeHtml(v.requestId)}">` +
    `<input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}">` +
    `<div class="actions">` +
    `<button type="submit" name="decision" value="approve"${blocked ? ` disabled aria-describedby="approve-help"` : ""}>Approve</button>` +
    (blocked ? `<button type="submit" name="decision" value="continue" class="secondary">I have connected — check again</button>` : "") +
    `<button type="submit" name="decision" value="cancel" class="secondary">Cancel</button></div></form></section>`;
  const title = blocked ? `Connect your accounts for ${name}` : `Allow ${name}?`;
  const body = `<h1>${escapeHtml(title)}</h1>` + steps + approve;
  const returnTo = `${paths.setup}?req=${v.requestId}`;
  // The decision redirects to the client's redirect URI; form-action must allow that target.
  return htmlPage(title, body, {
    status: v.status,
    formAction: [v.redirectUri],
    account: { label: userLabel(v.user), csrf: v.csrf, action: paths.logout, returnTo },
  });
}
