/**
 * The browser side of the authorization server: the authorization endpoint, then (after the
 * browser login) the consent page and its decision.
 *
 * Until the client and its redirect URI are verified, errors are shown as a page and never
 * redirected (an unverified redirect URI would make the gateway an open redirector). After
 * that, errors go back to the client with `state` and `iss` — but only to redirect URIs the
 * gateway trusts: those of pre-registered clients, and loopback `http` (the user's own
 * machine). Anyone can register a client (DCR, or a metadata document) with a web redirect URI
 * or a scheme whose handler opens one (`microsoft-edge:https://…`), so a malformed request would
 * otherwise bounce the browser, unasked, to any site; those errors are shown as a page instead
 * (RFC 9700 §4.11.2). A user who declines on the consent page, having seen where the redirect
 * goes, is still sent back.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.11.2 Authorization server as open redirector
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1 Error response
 * @see https://www.rfc-editor.org/rfc/rfc9207 `iss` in the authorization response
 * @see https://www.rfc-editor.org/rfc/rfc8707 Resource indicators
 */
import type { SystemRequestContext } from "../routing/system-routes.js";
import { escapeHtml, htmlPage, redirect } from "../web/html.js";
import { csrfToken, getBrowserUser, readForm, requireBrowserUser, sameOriginPost, verifyCsrf } from "../web/session.js";
import { findClient, isLoopbackRedirect, redirectUriMatches, scopeList, TOLERATED_SCOPES } from "./clients.js";
import { renderConsent, upstreamStatuses } from "./consent-page.js";
import { random, sha256, single } from "./http.js";
import type { AuthServer } from "./server.js";
import { issueCode } from "./tokens.js";
import { NS, type PendingAuthorization } from "./types.js";
import { emitAudit } from "../audit/audit.js";
import { AuditEvents } from "../audit/events.js";

/** An error page (no redirect): for requests whose client or redirect URI is not verified. */
function errorPage(message: string, status = 400): Response {
  return htmlPage(
    "Authorization request refused",
    `<h1>Authorization request refused</h1><p>${escapeHtml(message)}</p>` +
      `<p class="muted">The application that sent you here may be misconfigured. You can close this page.</p>`,
    { status },
  );
}

/** The redirect back to the client carrying `params` plus `state` and `iss`. */
function backToClient(as: AuthServer, redirectUri: string, state: string | undefined, params: Record<string, string>): Response {
  const u = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  if (state !== undefined) u.searchParams.set("state", state);
  u.searchParams.set("iss", as.issuer);
  return redirect(u.href, { status: 303 });
}

const CHALLENGE_RE = /^[A-Za-z0-9_-]{43}$/;

/** GET `<basePath>/oauth/authorize`. */
export async function authorize(as: AuthServer, request: Request, ctx: SystemRequestContext): Promise<Response> {
  const { services } = ctx;
  const q = new URL(request.url).searchParams;
  const clientId = single(q, "client_id");
  if (!clientId) return errorPage("The request does not name its application (client_id).");
  const client = await findClient(services, as.config, clientId);
  if (!client) return errorPage("The application is unknown, or its metadata document could not be loaded.");
  const given = single(q, "redirect_uri");
  if (given === null) return errorPage("The request names more than one redirect address.");
  let redirectUri: string;
  if (given === undefined) {
    if (client.redirectUris.length !== 1) return errorPage("The request does not name its redirect address (redirect_uri).");
    redirectUri = client.redirectUris[0]!;
  } else if (redirectUriMatches(client.redirectUris, given)) {
    redirectUri = given;
  } else {
    services.log.info({ clientId }, "authorization request with an unregistered redirect_uri refused");
    return errorPage("The redirect address is not registered for this application.");
  }

  const stateParam = single(q, "state");
  const state = stateParam ?? undefined;
  const trusted = client.kind === "static" || isLoopbackRedirect(redirectUri);
  const fail = (error: string, description: string) =>
    trusted ? backToClient(as, redirectUri, state, { error, error_description: description }) : errorPage(description);
  if (stateParam === null) return fail("invalid_request", "state is repeated.");
  const responseType = single(q, "response_type");
  if (!responseType) return fail("invalid_request", "response_type is required.");
  if (responseType !== "code") return fail("unsupported_response_type", "Only response_type=code is supported.");
  const challenge = single(q, "code_challenge");
  if (!challenge || !CHALLENGE_RE.test(challenge)) return fail("invalid_request", "A PKCE code_challenge is required.");
  if (single(q, "code_challenge_method") !== "S256") return fail("invalid_request", "code_challenge_method must be S256.");
  const resources = [...new Set(q.getAll("resource"))];
  if (resources.length !== 1) return fail("invalid_target", "Exactly one resource parameter is required.");
  const resource = resources[0]!;
  const rc = as.resourceFor(resource);
  if (!rc) return fail("invalid_target", "The resource is not served by this gateway.");
  if (!client.grantTypes.includes("authorization_code")) return fail("unauthorized_client", "The client may not use authorization codes.");

  const requested = scopeList(q.get("scope"));
  const unknown = requested.filter((s) => !rc.scopesSupported.includes(s) && !TOLERATED_SCOPES.has(s));
  if (unknown.length) return fail("invalid_scope", "The requested scope is not supported for this resource.");
  if (client.scope) {
    const registered = scopeList(client.scope);
    if (requested.some((s) => !registered.includes(s) && !TOLERATED_SCOPES.has(s))) {
      return fail("invalid_scope", "The requested scope exceeds what the client registered.");
    }
  }
  const meaningful = requested.filter((s) => rc.scopesSupported.includes(s));
  const scope = (meaningful.length ? meaningful : rc.scopesSupported).join(" ");
  if (scopeList(q.get("prompt")).includes("none")) return fail("consent_required", "This gateway always asks the user for consent.");

  const id = random(24);
  const pending: PendingAuthorization = {
    clientId: client.clientId,
    redirectUri,
    redirectUriGiven: given !== undefined,
    state,
    codeChallenge: challenge,
    resource,
    scope,
    createdAt: services.now(),
  };
  await services.store.put(NS.pending, sha256(id), pending, { ttlSeconds: as.config.pendingTtlSeconds });
  const consentPath = `${services.settings.basePath}/oauth/consent?req=${id}`;
  const user = await requireBrowserUser(request, services, consentPath);
  if (user instanceof Response) return user;
  return redirect(consentPath);
}

function expiredPage(): Response {
  return errorPage("This authorization request is unknown or has expired. Start again from your application.");
}

/** GET `<basePath>/oauth/consent?req=…`: what the user is asked to approve. */
export async function consentPage(as: AuthServer, request: Request, ctx: SystemRequestContext): Promise<Response> {
  const { services } = ctx;
  const id = new URL(request.url).searchParams.get("req") ?? "";
  if (!/^[A-Za-z0-9_-]{32}$/.test(id)) return expiredPage();
  const pending = (await services.store.get<PendingAuthorization>(NS.pending, sha256(id)))?.value;
  if (!pending) return expiredPage();
  const user = await requireBrowserUser(request, services, `${services.settings.basePath}/oauth/consent?req=${id}`);
  if (user instanceof Response) return user;
  const client = await findClient(services, as.config, pending.clientId);
  const rc = as.resourceFor(pending.resource);
  if (!client || !rc) return expiredPage();
  const upstreams = await upstreamStatuses(services, rc, user.sub, `${services.settings.basePath}/oauth/consent?req=${id}`);
  return renderConsent({
    services,
    requestId: id,
    csrf: await csrfToken(request, services),
    client,
    redirectUri: pending.redirectUri,
    resource: pending.resource,
    rc,
    scope: pending.scope,
    user,
    upstreams,
  });
}

/** POST `<basePath>/oauth/consent`: the decision (`approve` or `cancel`). */
export async function consentDecision(as: AuthServer, request: Request, ctx: SystemRequestContext): Promise<Response> {
  const { services } = ctx;
  const form = await readForm(request);
  const user = await getBrowserUser(request, services);
  if (!form || !user || !sameOriginPost(request, services) || !(await verifyCsrf(request, services, form.get("csrf")))) {
    return errorPage("The consent form expired or was not sent from this gateway's page. Start again from your application.", 403);
  }
  const id = form.get("req") ?? "";
  if (!/^[A-Za-z0-9_-]{32}$/.test(id)) return expiredPage();
  const taken = await services.store.take<PendingAuthorization>(NS.pending, sha256(id));
  if (!taken) return expiredPage();
  const p = taken.value;
  const decision = form.get("decision");
  const redirectHost = new URL(p.redirectUri).host;
  if (decision !== "approve") {
    emitAudit(services, { event: AuditEvents.consentDenied, clientId: p.clientId, subjectId: user.sub, redirectHost });
    return backToClient(as, p.redirectUri, p.state, { error: "access_denied", error_description: "The user declined." });
  }
  const code = await issueCode(services, {
    clientId: p.clientId,
    redirectUri: p.redirectUri,
    redirectUriGiven: p.redirectUriGiven,
    codeChallenge: p.codeChallenge,
    resource: p.resource,
    scope: p.scope,
    user,
  });
  emitAudit(services, { event: AuditEvents.consentApproved, clientId: p.clientId, subjectId: user.sub, redirectHost, resource: p.resource });
  return backToClient(as, p.redirectUri, p.state, { code });
}
