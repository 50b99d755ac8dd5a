/**
 * The connect flow in the browser:
 *
 * 1. `GET <basePath>/auth/connections/<id>/connect?redirect=true&operationId=…&browserTicket=…`
 *    — the `authUrl`. The browser user must be the ticket's subject (checked against the
 *    gateway's own browser session); then the ticket is used up and the browser goes straight to
 *    the upstream (302). Without a browser login to check against, and for links of the earlier
 *    form (`<basePath>/connections/<id>/connect?ticket=…`), a page asks for explicit confirmation
 *    in a CSRF-protected form. Without `redirect=true` the answer is 428 with the connect-required
 *    payload (JSON) whose `authUrl` is the browser link.
 * 2. `POST` of that form — uses the ticket up, stores the pending authorization (PKCE verifier,
 *    state) bound to this browser by a cookie, redirects to the upstream authorization endpoint.
 * 3. `GET <basePath>/auth/connections/<id>/callback` — single-use state, browser binding, RFC 9207
 *    `iss`, code exchange with `resource`, the grant stored encrypted; then a success page, or
 *    back to the page the connection was started from (the consent page) when the ticket says so.
 *
 * A connection started by a different gateway user than the one who last connected through the
 * same upstream authorization server from this browser asks the upstream for a fresh login
 * (`prompt=login`, unless the upstream's `prompt` option says otherwise; see `last-user.ts`).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation#phishing
 */
import { GatewayError } from "../../errors.js";
import type { GatewayServices } from "../../pipeline/services.js";
import type { UserInfo } from "../../pipeline/types.js";
import type { SystemRequestContext } from "../../routing/system-routes.js";
import { digest, peekFlow, peekTicket, randomValue, saveFlow, takeFlow, takeTicket } from "../../oauth/connect-state.js";
import { AuthorizationDeniedError, TokenEndpointError } from "../../oauth/flow.js";
import { authProfileId, callbackUrl, storeNewGrant, upstreamOAuthState, type UpstreamEntry } from "../../oauth/registry.js";
import { gatewayPaths } from "../../routing/gateway-paths.js";
import { errorSummary } from "../../oauth/upstream.js";
import { redirect, type AccountBlock } from "../html.js";
import {
  browserLoginAvailable,
  cookieHeader,
  getBrowserUser,
  issueFormNonce,
  pageAccount,
  readCookie,
  readForm,
  requireBrowserUser,
  safeReturnTo,
  sameOriginPost,
  verifyCsrf,
  verifyFormNonce,
} from "../session.js";
import { lastConnector, rememberConnector } from "./last-user.js";
import { anotherAccountPage, confirmPage, failurePage, problemPage, successPage } from "./pages.js";
import { emitAudit } from "../../audit/audit.js";
import { AuditEvents } from "../../audit/events.js";

const bindingCookie = (state: string) => `tollgate_connect_${digest(state).slice(0, 12)}`;

function callbackPath(services: GatewayServices, id: string): string {
  return new URL(callbackUrl(services, id)).pathname;
}

function userLabel(user: UserInfo): string {
  const d = user.data;
  const pick = [d.email, d.preferred_username, d.name].find((v) => typeof v === "string" && v.length > 0);
  return typeof pick === "string" && pick !== user.sub ? `${pick} (${user.sub})` : user.sub;
}

async function entryOr404(request: Request, services: GatewayServices, id: string | undefined): Promise<UpstreamEntry | Response> {
  const entry = id ? upstreamOAuthState(services).upstreams.get(id) : undefined;
  return entry ?? problemPage("Unknown connection", "This gateway has no upstream with that name.", 404, { account: await pageAccount(request, services) });
}

const expiredTicket = async (request: Request, services: GatewayServices) =>
  problemPage(
    "This connect link has expired",
    "The link was already used or is too old. Go back to your MCP client and repeat the request to get a new link.",
    410,
    { account: await pageAccount(request, services) },
  );

/** The signed-in account of a request known to have a session (for the another-account page). */
async function signedIn(request: Request, services: GatewayServices): Promise<AccountBlock | undefined> {
  const a = await pageAccount(request, services);
  return a && !("signedOut" in a) ? a : undefined;
}

/**
 * Starts an authorization at the upstream: stores the pending authorization and redirects the
 * browser there, with a cookie binding the callback to this browser. When someone else than
 * `startedBy` last connected through the same authorization server from this browser, the
 * upstream is asked for a fresh login.
 */
export async function startAuthorization(
  request: Request,
  services: GatewayServices,
  entry: UpstreamEntry,
  p: { subject: string | undefined; startedBy: string; scopes?: string[] | undefined; stepUps: number; returnTo?: string | undefined },
  status: 302 | 303 = 303,
): Promise<Response> {
  let start;
  try {
    start = await entry.oauth.beginAuthorization({
      scopes: p.scopes,
      freshLogin: (issuer) => lastConnector(request, services, issuer, p.startedBy) === "different",
    });
  } catch (err) {
    services.log.error({ upstream: entry.id, err: errorSummary(err) }, "could not start the upstream authorization");
    const detail = err instanceof GatewayError ? err.message : undefined;
    return problemPage(`${entry.displayName} is not reachable`, `The gateway could not prepare the ${entry.displayName} sign-in.`, 502, {
      detail,
      account: await pageAccount(request, services),
    });
  }
  if (start.prompt === "login" && entry.oauth.config.prompt === undefined) {
    services.log.info({ upstream: entry.id }, "another gateway user connected last from this browser; the upstream is asked for a fresh login");
  }
  const binding = randomValue();
  await saveFlow(services.store, services.secrets, {
    ...start.pending,
    upstreamId: entry.id,
    subject: p.subject,
    startedBy: p.startedBy,
    browserBinding: digest(binding),
    stepUps: p.stepUps,
    returnTo: p.returnTo,
  });
  const cookie = cookieHeader(services.settings, bindingCookie(start.pending.state), binding, {
    maxAge: 600,
    path: callbackPath(services, entry.id),
  });
  emitAudit(services, {
    event: AuditEvents.upstreamConnectStarted,
    upstreamServerId: entry.id,
    subjectId: p.subject,
    startedBy: p.startedBy,
    scopes: start.pending.scopes.join(" "),
    scopeSource: start.scopeSource,
  });
  return redirect(start.url.href, { status, headers: { "set-cookie": cookie } });
}

/** The 428 answer of a connect URL asked without `redirect=true`: the connect-required payload. */
function connectRequired(entry: UpstreamEntry, url: URL, ticket: { operationId: string; reason: string }): Response {
  const link = new URL(url);
  link.searchParams.set("redirect", "true");
  const body = {
    state: ticket.reason === "reconsent_required" ? "reconsent_required" : "authenticating",
    upstreamServerId: entry.id,
    operationId: ticket.operationId,
    authUrl: link.href,
    nextAction: "redirect",
    authProfileId: authProfileId(entry.id, entry.authMode),
  };
  return new Response(JSON.stringify(body), {
    status: 428,
    headers: { "content-type": "application/json", "cache-control": "no-store", "referrer-policy": "no-referrer" },
  });
}

/** GET connect: identity check, then the upstream (`redirect=true`), a confirmation page, or 428 JSON. */
export async function connectPage(request: Request, ctx: SystemRequestContext): Promise<Response> {
  const { services } = ctx;
  const entry = await entryOr404(request, services, ctx.params.id);
  if (entry instanceof Response) return entry;
  const url = new URL(request.url);
  const legacyLink = !url.searchParams.has("browserTicket");
  const ticketValue = url.searchParams.get("browserTicket") ?? url.searchParams.get("ticket");
  const ticket = await peekTicket(services.store, ticketValue);
  if (!ticket || ticket.upstreamId !== entry.id || entry.authMode !== "user-oauth") return expiredTicket(request, services);
  const wantsRedirect = url.searchParams.get("redirect") === "true";
  if (!wantsRedirect && !legacyLink) return connectRequired(entry, url, ticket);
  const action = gatewayPaths(services.settings.basePath).connect.replace(":id", encodeURIComponent(entry.id));
  let authOrigin: string | undefined;
  const confirm = async () => {
    try {
      authOrigin = new URL((await entry.oauth.discovery()).as.authorization_endpoint!).origin;
    } catch {
      authOrigin = undefined; // the POST will report the failure
    }
    return {
      displayName: entry.displayName,
      summary: entry.summary,
      action,
      ticket: ticketValue!,
      upstreamHost: entry.oauth.config.upstreamUrl.host,
      authOrigin,
    };
  };
  if (!browserLoginAvailable(services)) {
    const nonce = issueFormNonce(services, action);
    return confirmPage({
      ...(await confirm()),
      userLabel: ticket.subject,
      csrf: nonce.token,
      bearerMode: true,
      setCookie: nonce.setCookie,
      account: await pageAccount(request, services),
    });
  }
  const link = `${url.pathname}${url.search}`;
  const user = await requireBrowserUser(request, services, link);
  if (user instanceof Response) return user;
  if (user.sub !== ticket.subject) {
    services.log.warn({ upstream: entry.id, browserUser: user.sub }, "connect link opened by a different user; refused");
    const account = await signedIn(request, services);
    return account ? anotherAccountPage({ account, link, what: "connect link" }) : expiredTicket(request, services);
  }
  if (!wantsRedirect) {
    const account = await signedIn(request, services);
    if (!account) return expiredTicket(request, services); // the session ended in between
    return confirmPage({ ...(await confirm()), userLabel: userLabel(user), csrf: account.csrf, bearerMode: false, account: { ...account, returnTo: link } });
  }
  // The signed-in user is the ticket's subject: no confirmation step, straight to the upstream.
  const taken = await takeTicket(services.store, ticketValue);
  if (!taken || taken.upstreamId !== entry.id) return expiredTicket(request, services);
  return startAuthorization(
    request,
    services,
    entry,
    { subject: taken.subject, startedBy: user.sub, scopes: taken.scopes, stepUps: taken.stepUps, returnTo: taken.returnTo },
    302,
  );
}

/** POST connect: the confirmation form. */
export async function connectSubmit(request: Request, ctx: SystemRequestContext): Promise<Response> {
  const { services } = ctx;
  const entry = await entryOr404(request, services, ctx.params.id);
  if (entry instanceof Response) return entry;
  const form = await readForm(request);
  const expiredForm = async () =>
    problemPage("The form expired", "Open the connect link from your MCP client again.", 403, { account: await pageAccount(request, services) });
  if (!form || !sameOriginPost(request, services)) return expiredForm();
  const ticketValue = form.get("ticket");
  let user: UserInfo | undefined;
  if (browserLoginAvailable(services)) {
    user = await getBrowserUser(request, services);
    if (!user || !(await verifyCsrf(request, services, form.get("csrf")))) return expiredForm();
  } else if (!verifyFormNonce(request, services, form.get("csrf"))) return expiredForm();
  // Checked before the ticket is used up, so the right user can still use the link.
  const peeked = await peekTicket(services.store, ticketValue);
  if (!peeked || peeked.upstreamId !== entry.id || entry.authMode !== "user-oauth") return expiredTicket(request, services);
  if (user && user.sub !== peeked.subject) {
    const account = await signedIn(request, services);
    const link = `${new URL(request.url).pathname}?ticket=${encodeURIComponent(ticketValue!)}`;
    if (account) return anotherAccountPage({ account, link, what: "connect link" });
    return expiredForm();
  }
  const ticket = await takeTicket(services.store, ticketValue);
  if (!ticket || ticket.upstreamId !== entry.id || ticket.subject !== peeked.subject) return expiredTicket(request, services);
  if (form.get("decision") !== "connect") {
    return problemPage("Connection cancelled", `${entry.displayName} was not connected.`, 200, { account: await pageAccount(request, services) });
  }
  return startAuthorization(request, services, entry, {
    subject: ticket.subject,
    startedBy: user?.sub ?? ticket.subject,
    scopes: ticket.scopes,
    stepUps: ticket.stepUps,
    returnTo: ticket.returnTo,
  });
}

/** GET callback: the upstream's redirect back. */
export async function connectCallback(request: Request, ctx: SystemRequestContext): Promise<Response> {
  const { services } = ctx;
  const entry = await entryOr404(request, services, ctx.params.id);
  if (entry instanceof Response) return entry;
  const params = new URL(request.url).searchParams;
  const state = params.get("state");
  const account = await pageAccount(request, services);
  const expired = () =>
    problemPage("This sign-in has expired", "The sign-in took too long or was already completed. Start again from your MCP client.", 400, { account });
  // Check the browser binding before using the state up, so a stolen callback URL cannot burn it.
  const pending = await peekFlow(services.store, state);
  // A flow for a user's grant must not complete as the shared one (or the reverse) if the mode changed.
  const modeMatches = (pending?.subject === undefined) === (entry.authMode === "shared-oauth");
  if (!pending || pending.upstreamId !== entry.id || !modeMatches) return expired();
  const cookieName = bindingCookie(state!);
  const cookies = new Headers();
  cookies.append("set-cookie", cookieHeader(services.settings, cookieName, "", { maxAge: 0, path: callbackPath(services, entry.id) }));
  const binding = readCookie(request, cookieName);
  if (!binding || digest(binding) !== pending.browserBinding) {
    services.log.warn({ upstream: entry.id }, "connect callback arrived in a different browser than the one that started it; refused");
    return problemPage("Sign-in started elsewhere", "This sign-in was started in another browser. Nothing was connected.", 400, { account });
  }
  if (browserLoginAvailable(services)) {
    // The cookie alone is not enough: one planted in another browser (sibling-domain cookie
    // tossing, a plain-http answer on this host) would bind that browser's upstream account to
    // whoever started the flow. The one who started it must be signed in here too.
    const user = await getBrowserUser(request, services);
    if (!user || user.sub !== pending.startedBy) {
      services.log.warn({ upstream: entry.id, signedIn: !!user }, "connect callback without the session that started it; refused");
      const why = user
        ? "This sign-in was started by another account."
        : "Whoever started this sign-in is not signed in to the gateway in this browser.";
      return problemPage("This sign-in belongs to another account", `${why} Nothing was connected.`, 403, { account });
    }
  }
  const flow = await takeFlow(services.store, services.secrets, state);
  if (!flow) return expired();
  try {
    const tokens = await entry.oauth.completeAuthorization(flow, params);
    await storeNewGrant(
      services,
      entry,
      {
        subject: flow.subject,
        connectedBy: flow.startedBy,
        issuer: flow.issuer,
        clientId: flow.clientId,
        resource: flow.resource,
        scopes: flow.scopes,
        stepUps: flow.stepUps,
      },
      tokens,
    );
  } catch (err) {
    services.log.warn({ upstream: entry.id, err: errorSummary(err) }, "upstream connection failed at the callback");
    emitAudit(services, {
      event: AuditEvents.upstreamConnectFailed,
      upstreamServerId: entry.id,
      subjectId: flow.subject ?? flow.startedBy,
      reasonCode: err instanceof AuthorizationDeniedError ? err.oauthError : err instanceof GatewayError ? err.code : "internal_error",
      failureOrigin: err instanceof AuthorizationDeniedError ? "client" : "upstream",
    });
    if (err instanceof AuthorizationDeniedError) return failurePage(entry.displayName, err.oauthError, err.description, cookies, account);
    if (err instanceof TokenEndpointError) return failurePage(entry.displayName, err.oauthError ?? err.code, undefined, cookies, account);
    const detail = err instanceof GatewayError ? err.code : "internal_error";
    return failurePage(entry.displayName, detail, undefined, cookies, account);
  }
  // Only now is the upstream's session in this browser known to be this user's.
  cookies.append("set-cookie", rememberConnector(request, services, flow.issuer, flow.startedBy));
  // Started from one of the gateway's pages (the consent page): back there, re-checked as same-origin.
  if (flow.returnTo) return redirect(safeReturnTo(flow.returnTo, services), { status: 303, headers: cookies });
  const next = flow.subject === undefined ? `${services.settings.basePath}/admin/connections` : `${services.settings.basePath}/connections`;
  return successPage(entry.displayName, next, cookies, account);
}
