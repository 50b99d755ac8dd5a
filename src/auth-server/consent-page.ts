/**
 * The consent page: which application asks, where the browser goes afterwards (its redirect
 * host, shown prominently — the one thing a phishing client cannot fake), which route and
 * scopes, and the route's upstreams with their connection state and a Connect button, so a
 * user can connect upstreams before the client gets its token. One form, CSRF-protected, with
 * Approve and Cancel as `decision` buttons; the page cannot be framed.
 */
import { GRANTS_NS, grantKey } from "../oauth/grants.js";
import { connectUrlFor } from "../oauth/registry.js";
import type { GatewayServices } from "../pipeline/services.js";
import type { UserInfo } from "../pipeline/types.js";
import { escapeHtml, htmlPage } from "../web/html.js";
import { isLoopbackRedirect } from "./clients.js";
import type { OAuthClient, ResourceConfig, UpstreamInfo } from "./types.js";

export interface UpstreamStatus extends UpstreamInfo {
  connected: boolean;
  /** Where the Connect button goes (undefined for shared upstreams). */
  connectUrl: string | undefined;
}

/**
 * Connection state of each upstream of the route for `sub`. The Connect links carry a connect
 * ticket for `sub` and the route; with `returnTo` (this consent page), the browser comes back
 * here once connected.
 */
export async function upstreamStatuses(services: GatewayServices, rc: ResourceConfig, sub: string, returnTo?: string): Promise<UpstreamStatus[]> {
  const fallback = `${services.settings.basePath}/connections`;
  return Promise.all(
    rc.upstreams.map(async (u) => {
      if (u.authMode === "shared-oauth") return { ...u, connected: false, connectUrl: undefined };
      const connected = (await services.store.get(GRANTS_NS, grantKey(u.id, sub))) !== undefined;
      let connectUrl = fallback;
      if (!connected) {
        try {
          connectUrl = await connectUrlFor(services, u.id, sub, rc.route.operationId, returnTo);
        } catch (err) {
          services.log.warn({ err, upstream: u.id }, "could not create a connect link; linking to the connections page");
        }
      }
      return { ...u, connected, connectUrl };
    }),
  );
}

export interface ConsentView {
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
}

function who(user: UserInfo): string {
  const email = user.data.email;
  const name = user.data.name;
  if (typeof email === "string" && email) return email;
  if (typeof name === "string" && name) return name;
  return user.sub;
}

function redirectDisplay(uri: string): string {
  const u = new URL(uri);
  return u.protocol === "http:" || u.protocol === "https:" ? u.host : `${u.protocol}//${u.host}`;
}

/** Renders the consent page. */
export function renderConsent(v: ConsentView): Response {
  const base = v.services.settings.basePath;
  const c = v.client;
  const name = c.clientName?.trim() || "An unnamed application";
  const idNote =
    c.kind === "cimd"
      ? `Identified by its metadata at <span class="host">${escapeHtml(new URL(c.clientId).host)}</span>.`
      : c.kind === "static"
        ? "Registered by the gateway's administrator."
        : "The application named itself when it registered; the name is not verified.";
  const upstreams = v.upstreams.length
    ? `<p>This route reaches these services on your behalf:</p><ul class="list">${v.upstreams
        .map((u) => {
          const state = u.authMode === "shared-oauth"
            ? `<span class="badge">Shared connection</span>`
            : u.connected
              ? `<span class="badge">Connected</span>`
              : `<a class="button small secondary" href="${escapeHtml(u.connectUrl ?? `${base}/connections`)}" rel="noreferrer">Connect</a>`;
          return `<li><span>${escapeHtml(u.displayName)}</span>${state}</li>`;
        })
        .join("")}</ul><p class="muted">You can connect a service now or later, when the application first uses it.</p>`
    : "";
  // A metadata document proves who publishes it, not who receives the code: any program on the
  // user's machine can name a well-known client's document and a loopback port.
  // https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#localhost-redirect-uri-risks
  const loopbackWarning =
    c.kind === "cimd" && isLoopbackRedirect(v.redirectUri)
      ? `<p class="warn">The approval goes to a program on this computer, not to a website. Any program running ` +
        `here could have started this request under ${escapeHtml(name)}'s name: approve only if you started it ` +
        `from that application just now.</p>`
      : "";
  const scopes = v.scope ? `<p class="muted">Scope: <code>${escapeHtml(v.scope)}</code></p>` : "";
  const body =
    `<h1>Allow ${escapeHtml(name)} to use ${escapeHtml(v.rc.route.operationId)}?</h1>` +
    `<p>Signed in as <strong>${escapeHtml(who(v.user))}</strong>.</p>` +
    `<p>After you approve, you will be sent to <span class="host">${escapeHtml(redirectDisplay(v.redirectUri))}</span>. ` +
    `Only continue if you trust that address.</p>` +
    loopbackWarning +
    `<p class="muted">${idNote}</p>` +
    `<p class="muted">Route: <code>${escapeHtml(v.resource)}</code></p>` +
    scopes +
    upstreams +
    `<form method="post" action="${escapeHtml(`${base}/oauth/consent`)}">` +
    `<input type="hidden" name="req" value="${escapeHtml(v.requestId)}">` +
    `<input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}">` +
    `<div class="actions"><button type="submit" name="decision" value="approve">Approve</button>` +
    `<button type="submit" name="decision" value="cancel" class="secondary">Cancel</button></div></form>`;
  // The decision redirects to the client's redirect URI; form-action must allow that target.
  return htmlPage(`Allow ${name}?`, body, { formAction: [v.redirectUri] });
}
