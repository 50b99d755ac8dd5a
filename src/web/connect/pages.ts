/**
 * HTML of the connect and connections pages. Everything interpolated is escaped; pages carry
 * no scripts (see `html.ts` for the CSP).
 */
import { escapeHtml as e, htmlPage } from "../html.js";
import { csrfField } from "../session.js";

/** What the connections pages list per upstream. */
export interface ConnectionRow {
  id: string;
  displayName: string;
  summary: string | undefined;
  authMode: "user-oauth" | "shared-oauth";
  connected: boolean;
  connectedAt: number | undefined;
  refreshedAt: number | undefined;
  expiresAt: number | undefined;
  scopes: string[];
  /** Shared grants: who connected it. */
  connectedBy?: string | undefined;
}

function when(ms: number | undefined): string {
  return ms === undefined ? "" : new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** The confirmation page of a connect link. */
export function confirmPage(p: {
  displayName: string;
  summary: string | undefined;
  userLabel: string;
  action: string;
  ticket: string;
  csrf: string;
  upstreamHost: string;
  authOrigin: string | undefined;
  bearerMode: boolean;
  setCookie?: string | undefined;
}): Response {
  const body =
    `<h1>Connect ${e(p.displayName)} to ${e(p.userLabel)}</h1>` +
    (p.summary ? `<p>${e(p.summary)}</p>` : "") +
    `<p>The gateway will send you to <span class="host">${e(new URL(p.authOrigin ?? `https://${p.upstreamHost}`).host)}</span> to sign in and approve access. ` +
    `Your ${e(p.displayName)} access is then used for your requests to <span class="host">${e(p.upstreamHost)}</span> through this gateway.</p>` +
    (p.bearerMode
      ? `<p class="warn">This gateway has no browser sign-in, so it cannot check who opened this link. Only continue if you started this connection from your own MCP client just now.</p>`
      : `<p class="muted">Only continue if you asked your MCP client to connect ${e(p.displayName)}. If someone sent you this link, cancel.</p>`) +
    `<form method="post" action="${e(p.action)}">` +
    `<input type="hidden" name="ticket" value="${e(p.ticket)}">${csrfField(p.csrf)}` +
    `<div class="actions"><button type="submit" name="decision" value="connect">Connect ${e(p.displayName)}</button>` +
    `<button type="submit" name="decision" value="cancel" class="secondary">Cancel</button></div></form>`;
  return htmlPage(`Connect ${p.displayName}`, body, {
    formAction: p.authOrigin ? [p.authOrigin] : [],
    headers: p.setCookie ? { "set-cookie": p.setCookie } : undefined,
  });
}

/** A page for a refused or failed step, with an optional detail line (escaped). */
export function problemPage(title: string, message: string, status: number, detail?: string, headers?: HeadersInit): Response {
  const body =
    `<h1>${e(title)}</h1><p>${e(message)}</p>` + (detail ? `<p class="warn"><code>${e(detail)}</code></p>` : "");
  return htmlPage(title, body, { status, headers });
}

/** The page after a successful connection. */
export function successPage(displayName: string, connectionsUrl: string, headers?: HeadersInit): Response {
  return htmlPage(
    `${displayName} connected`,
    `<h1>${e(displayName)} is connected</h1>` +
      `<p>You can close this window and return to your MCP client; your next request will use the new connection.</p>` +
      `<p class="muted"><a href="${e(connectionsUrl)}">Manage your connections</a></p>`,
    { headers },
  );
}

/** The upstream's error, shown safely (it is attacker-influenced text). */
export function failurePage(displayName: string, error: string, description: string | undefined, headers?: HeadersInit): Response {
  return htmlPage(
    `${displayName} was not connected`,
    `<h1>${e(displayName)} was not connected</h1>` +
      `<p>The ${e(displayName)} sign-in did not complete.</p>` +
      `<p class="warn"><code>${e(error.slice(0, 100))}</code>${description ? ` — ${e(description.slice(0, 300))}` : ""}</p>` +
      `<p class="muted">Go back to your MCP client and try again.</p>`,
    { status: 400, headers },
  );
}

function rowHtml(r: ConnectionRow, admin: boolean): string {
  const status = r.connected
    ? `<span class="badge">connected</span>`
    : `<span class="badge off">not connected</span>`;
  const facts = r.connected
    ? `<div class="muted">since ${e(when(r.connectedAt))}${r.connectedBy ? ` by ${e(r.connectedBy)}` : ""}${r.scopes.length ? ` · scopes ${e(r.scopes.join(" "))}` : ""}</div>`
    : "";
  let buttons = "";
  if (r.authMode === "user-oauth" || admin) {
    buttons = r.connected
      ? `<button type="submit" name="decision" value="${admin ? "reset" : "disconnect"}:${e(r.id)}" class="secondary">${admin ? "Reset" : "Disconnect"}</button>`
      : `<button type="submit" name="decision" value="connect:${e(r.id)}">Connect</button>`;
    if (admin && r.connected) buttons = `<button type="submit" name="decision" value="connect:${e(r.id)}">Reconnect</button> ${buttons}`;
  } else buttons = `<span class="muted">managed by an administrator</span>`;
  return `<li><div><strong>${e(r.displayName)}</strong> ${status}${r.summary ? `<div class="muted">${e(r.summary)}</div>` : ""}${facts}</div><div>${buttons}</div></li>`;
}

/** The signed-in user's connections (or, for admins, the shared ones), one form with decision buttons. */
export function connectionsPage(p: {
  title: string;
  userLabel: string;
  rows: ConnectionRow[];
  action: string;
  csrf: string;
  admin: boolean;
  notice?: string | undefined;
  formAction: string[];
}): Response {
  const list = p.rows.length
    ? `<ul class="list">${p.rows.map((r) => rowHtml(r, p.admin)).join("")}</ul>`
    : `<p class="muted">No upstream on this gateway uses ${p.admin ? "shared" : "per-user"} OAuth.</p>`;
  const body =
    `<h1>${e(p.title)}</h1><p class="muted">Signed in as ${e(p.userLabel)}</p>` +
    (p.notice ? `<p class="badge">${e(p.notice)}</p>` : "") +
    `<form method="post" action="${e(p.action)}">${csrfField(p.csrf)}${list}</form>`;
  return htmlPage(p.title, body, { formAction: p.formAction });
}
