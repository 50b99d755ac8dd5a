/**
 * The setup page (`B/oauth/setup`, alias `B/oauth/consent`) of a pending authorization: GET
 * shows it, POST takes the decision:
 *
 * - `continue`: back to the page (after connecting an upstream elsewhere, or to check again);
 * - `approve`: only once every per-user upstream of the route is connected — otherwise the page
 *   is shown again with the reason (409) and the request stays pending; then the code goes to the
 *   client;
 * - `cancel`: `access_denied` to the client.
 *
 * @see https://zuplo.com/docs/mcp-gateway/auth/overview
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 */
import { emitAudit } from "../audit/audit.js";
import { AuditEvents } from "../audit/events.js";
import type { SystemRequestContext } from "../routing/system-routes.js";
import { redirect } from "../web/html.js";
import { csrfToken, getBrowserUser, pageAccount, readForm, requireBrowserUser, sameOriginPost, verifyCsrf } from "../web/session.js";
import type { UserInfo } from "../pipeline/types.js";
import { backToClient, errorPage, setupPath } from "./authorize.js";
import { findClient } from "./clients.js";
import { sha256 } from "./http.js";
import type { AuthServer } from "./server.js";
import { connectionStates, missingConnections, renderSetup, upstreamStatuses } from "./setup-page.js";
import { issueCode } from "./tokens.js";
import { NS, type PendingAuthorization } from "./types.js";

const REQ_RE = /^[A-Za-z0-9_-]{32}$/;

async function expiredPage(request: Request, as: AuthServer): Promise<Response> {
  return errorPage(
    "This authorization request is unknown or has expired. Start again from your application.",
    400,
    await pageAccount(request, as.services),
  );
}

async function loadPending(as: AuthServer, id: string): Promise<PendingAuthorization | undefined> {
  if (!REQ_RE.test(id)) return undefined;
  return (await as.services.store.get<PendingAuthorization>(NS.pending, sha256(id)))?.value;
}

/** Renders the page for a pending authorization, or the expired page. */
async function show(
  as: AuthServer,
  request: Request,
  id: string,
  pending: PendingAuthorization,
  user: UserInfo,
  extra: { notice?: string; status?: number } = {},
): Promise<Response> {
  const { services } = as;
  const client = await findClient(services, as.config, pending.clientId);
  const rc = as.resourceFor(pending.resource);
  if (!client || !rc) return expiredPage(request, as);
  const upstreams = await upstreamStatuses(services, rc, user.sub, setupPath(as, id));
  return renderSetup({
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
    ...extra,
  });
}

/** GET `B/oauth/setup?req=…`. */
export async function setupPage(as: AuthServer, request: Request, ctx: SystemRequestContext): Promise<Response> {
  const id = new URL(request.url).searchParams.get("req") ?? "";
  const pending = await loadPending(as, id);
  if (!pending) return expiredPage(request, as);
  const user = await requireBrowserUser(request, ctx.services, setupPath(as, id));
  if (user instanceof Response) return user;
  return show(as, request, id, pending, user);
}

/** POST `B/oauth/setup`: `decision` = `continue` | `approve` | `cancel`. */
export async function setupDecision(as: AuthServer, request: Request, ctx: SystemRequestContext): Promise<Response> {
  const { services } = ctx;
  const form = await readForm(request);
  const user = await getBrowserUser(request, services);
  if (!form || !user || !sameOriginPost(request, services) || !(await verifyCsrf(request, services, form.get("csrf")))) {
    return errorPage(
      "The setup form expired or was not sent from this gateway's page. Start again from your application.",
      403,
      await pageAccount(request, services),
    );
  }
  const id = form.get("req") ?? "";
  const pending = await loadPending(as, id);
  if (!pending) return expiredPage(request, as);
  const decision = form.get("decision");
  const issuer = pending.issuer ?? as.issuer;
  const redirectHost = new URL(pending.redirectUri).host;
  if (decision === "continue") return redirect(setupPath(as, id), { status: 303 });
  if (decision === "cancel") {
    if (!(await services.store.take(NS.pending, sha256(id)))) return expiredPage(request, as);
    emitAudit(services, { event: AuditEvents.consentDenied, clientId: pending.clientId, subjectId: user.sub, redirectHost });
    return backToClient(issuer, pending.redirectUri, pending.state, { error: "access_denied", error_description: "The user declined." });
  }
  if (decision !== "approve") {
    return show(as, request, id, pending, user, { notice: "Choose Approve or Cancel.", status: 400 });
  }
  const rc = as.resourceFor(pending.resource);
  if (!rc) return expiredPage(request, as);
  const missing = missingConnections(await connectionStates(services, rc, user.sub));
  if (missing.length) {
    services.log.info({ clientId: pending.clientId, sub: user.sub, missing: missing.map((u) => u.id) }, "approval refused: upstreams not connected");
    const names = missing.map((u) => u.displayName).join(", ");
    return show(as, request, id, pending, user, { notice: `Connect ${names} before approving.`, status: 409 });
  }
  // Single use: of two concurrent approvals only one gets the pending request.
  if (!(await services.store.take(NS.pending, sha256(id)))) return expiredPage(request, as);
  const code = await issueCode(services, {
    clientId: pending.clientId,
    redirectUri: pending.redirectUri,
    redirectUriGiven: pending.redirectUriGiven,
    codeChallenge: pending.codeChallenge,
    resource: pending.resource,
    scope: pending.scope,
    user,
  });
  emitAudit(services, { event: AuditEvents.consentApproved, clientId: pending.clientId, subjectId: user.sub, redirectHost, resource: pending.resource });
  return backToClient(issuer, pending.redirectUri, pending.state, { code });
}
