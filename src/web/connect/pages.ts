/**
 * HTML of the connect and connections pages. Everything interpolated is escaped; pages carry
 * no scripts (see `html.ts` for the CSP).
 */
import { escapeHtml as e, htmlPage, signOutForm, type AccountBlock, type PageAccount } from "../html.js";
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
  account: PageAccount | undefined;
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
    account: p.account,
  });
}

/** Options of {@link problemPage}. */
export interface ProblemOptions {
  /** A detail line (escaped), e.g. an error code. */
  detail?: string | undefined;
  headers?: HeadersInit | undefined;
  account?: PageAccount | undefined;
  /** Extra HTML after the message (already escaped), e.g. a way out of the problem. */
  actionsHtml?: string | undefined;
}

/** A page for a refused or failed step. */
export function problemPage(title: string, message: string, status: number, opts: ProblemOptions = {}): Response {
  const body =
    `<h1>${e(title)}</h1><p>${e(message)}</p>` +
    (opts.detail ? `<p class="warn"><code>${e(opts.detail)}</code></p>` : "") +
    (opts.actionsHtml ?? "");
  return htmlPage(title, body, { status, headers: opts.headers, account: opts.account });
}

/**
 * "This link belongs to another account": the signed-in user is not the one the connect link
 * was made for. Nothing is connected; the way on is to sign out and sign in as the link's user
 * (the sign-out returns to the link, which asks for sign-in and then continues), or to open the
 * link again once signed in as that user elsewhere.
 */
export function anotherAccountPage(p: { account: AccountBlock; link: string; what: string }): Response {
  const actions =
    `<p>If the link is yours, sign out and sign in as yourself: you come back to this link and can connect. ` +
    `If someone sent it to you, close this page.</p>` +
    `<div class="actions">${signOutForm(p.account, { button: "Sign out and use this link", buttonClass: "", returnTo: p.link })}` +
    `<a class="button secondary" href="${e(p.link)}" rel="noreferrer">Try again</a></div>`;
  return problemPage(
    "This link belongs to another account",
    `You are signed in as ${p.account.label}, but this ${p.what} was made for a different gateway user. Nothing was connected.`,
    403,
    { account: { ...p.account, returnTo: p.link }, actionsHtml: actions },
  );
}

/** The page after a successful connection. */
export function successPage(displayName: string, connectionsUrl: string, headers: HeadersInit | undefined, account: PageAccount | undefined): Response {
  return htmlPage(
    `${displayName} connected`,
    `<h1>${e(displayName)} is connected</h1>` +
      `<p>You can close this window and return to your MCP client; your next request will use the new connection.</p>` +
      `<p class="muted"><a href="${e(connectionsUrl)}">Manage your connections</a></p>`,
    { headers, account },
  );
}

/** The upstream's error, shown safely (it is attacker-influenced text). */
export function failurePage(
  displayName: string,
  error: string,
  description: string | undefined,
  headers: HeadersInit | undefined,
  account: PageAccount | undefined,
): Response {
  return htmlPage(
    `${displayName} was not connected`,
    `<h1>${e(displayName)} was not connected</h1>` +
      `<p>The ${e(displayName)} sign-in did not complete.</p>` +
      `<p class="warn"><code>${e(error.slice(0, 100))}</code>${description ? ` — ${e(description.slice(0, 300))}` : ""}</p>` +
      `<p class="muted">Go back to your MCP client and try again.</p>`,
    { status: 400, headers, account },
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
  account: AccountBlock;
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
    `<h1>${e(p.title)}</h1>` +
    (p.notice ? `<p class="badge">${e(p.notice)}</p>` : "") +
    `<form method="post" action="${e(p.action)}">${csrfField(p.csrf)}${list}</form>`;
  return htmlPage(p.title, body, { formAction: p.formAction, account: p.account });
}
