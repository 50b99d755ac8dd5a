/**
 * The signed-in user's connections (`<basePath>/connections` HTML, `<basePath>/api/connections`
 * JSON) and the administrators' shared connections (`<basePath>/admin/connections`).
 * Disconnecting revokes the tokens at the upstream where it supports RFC 7009.
 */
import type { GatewayServices } from "../../pipeline/services.js";
import type { UserInfo } from "../../pipeline/types.js";
import type { SystemRequestContext } from "../../routing/system-routes.js";
import { GRANTS_NS, type GrantMeta } from "../../oauth/grants.js";
import { disconnectGrant, entryGrantKey, upstreamOAuthState, type UpstreamEntry } from "../../oauth/registry.js";
import { gatewayPaths } from "../../routing/gateway-paths.js";
import { redirect } from "../html.js";
import { accountLabel, csrfToken, getBrowserUser, isAdmin, pageAccount, readForm, requireBrowserUser, sameOriginPost, verifyCsrf } from "../session.js";
import { startAuthorization } from "./connect.js";
import { connectionsPage, problemPage, type ConnectionRow } from "./pages.js";

async function rowFor(services: GatewayServices, entry: UpstreamEntry, subject: string | undefined): Promise<ConnectionRow> {
  const key = entryGrantKey(entry, subject);
  const rec = await services.store.get<GrantMeta>(GRANTS_NS, key);
  const m = rec?.value;
  return {
    id: entry.id,
    displayName: entry.displayName,
    summary: entry.summary,
    authMode: entry.authMode,
    connected: !!m,
    connectedAt: m?.createdAt,
    refreshedAt: m?.refreshedAt ?? undefined,
    expiresAt: m?.expiresAt ?? undefined,
    scopes: m?.scopes ?? [],
    connectedBy: entry.authMode === "shared-oauth" ? m?.subject : undefined,
  };
}

async function rows(services: GatewayServices, user: UserInfo, mode: "user" | "admin"): Promise<ConnectionRow[]> {
  const out: ConnectionRow[] = [];
  for (const entry of upstreamOAuthState(services).upstreams.values()) {
    if (mode === "admin" && entry.authMode !== "shared-oauth") continue;
    out.push(await rowFor(services, entry, entry.authMode === "shared-oauth" ? undefined : user.sub));
  }
  return out.sort((a, b) => a.displayName.localeCompare(b.displayName));
}

async function authOrigins(services: GatewayServices): Promise<string[]> {
  const out: string[] = [];
  for (const entry of upstreamOAuthState(services).upstreams.values()) {
    try {
      out.push(new URL((await entry.oauth.discovery()).as.authorization_endpoint!).origin);
    } catch {
      // unreachable upstreams simply cannot be connected right now
    }
  }
  return out;
}

async function page(request: Request, services: GatewayServices, user: UserInfo, admin: boolean, notice?: string): Promise<Response> {
  const base = services.settings.basePath;
  const here = admin ? `${base}/admin/connections` : `${base}/connections`;
  const csrf = await csrfToken(request, services);
  return connectionsPage({
    title: admin ? "Shared connections" : "Your connections",
    // Signing out returns here, which asks for sign-in again: the way to switch users.
    account: { label: accountLabel(user), csrf, action: gatewayPaths(base).logout, returnTo: here },
    rows: await rows(services, user, admin ? "admin" : "user"),
    action: here,
    csrf,
    admin,
    notice,
    formAction: await authOrigins(services),
  });
}

/** GET `<basePath>/connections`. */
export async function connectionsHtml(request: Request, ctx: SystemRequestContext): Promise<Response> {
  const url = new URL(request.url);
  const user = await requireBrowserUser(request, ctx.services, `${url.pathname}${url.search}`);
  if (user instanceof Response) return user;
  const done = url.searchParams.get("done");
  return page(request, ctx.services, user, false, done === "disconnected" ? "Disconnected." : undefined);
}

/** POST `<basePath>/connections` and `<basePath>/admin/connections`: the decision buttons. */
async function decide(request: Request, ctx: SystemRequestContext, admin: boolean): Promise<Response> {
  const { services } = ctx;
  const base = services.settings.basePath;
  const user = await getBrowserUser(request, services);
  const form = await readForm(request);
  const account = async () => ({ account: await pageAccount(request, services) });
  if (!user || !form || !sameOriginPost(request, services) || !(await verifyCsrf(request, services, form.get("csrf")))) {
    return problemPage("The form expired", "Reload the page and try again.", 403, await account());
  }
  if (admin && !isAdmin(user, services.settings)) return problemPage("Administrators only", "You are not an administrator of this gateway.", 403, await account());
  const [action, id] = (form.get("decision") ?? "").split(/:(.*)/s) as [string, string | undefined];
  const entry = id ? upstreamOAuthState(services).upstreams.get(id) : undefined;
  if (!entry || (admin ? entry.authMode !== "shared-oauth" : entry.authMode !== "user-oauth")) {
    return problemPage("Unknown connection", "Nothing was changed.", 400, await account());
  }
  const subject = admin ? undefined : user.sub;
  if (action === "connect") {
    return startAuthorization(request, services, entry, { subject, startedBy: user.sub, stepUps: 0 });
  }
  if (action === "disconnect" || action === "reset") {
    await disconnectGrant(services, entry, subject, user.sub);
    return redirect(`${admin ? `${base}/admin/connections` : `${base}/connections`}?done=disconnected`, { status: 303 });
  }
  return problemPage("Unknown action", "Nothing was changed.", 400, await account());
}

export const connectionsSubmit = (request: Request, ctx: SystemRequestContext) => decide(request, ctx, false);
export const adminSubmit = (request: Request, ctx: SystemRequestContext) => decide(request, ctx, true);

/** GET `<basePath>/admin/connections`. */
export async function adminHtml(request: Request, ctx: SystemRequestContext): Promise<Response> {
  const url = new URL(request.url);
  const user = await requireBrowserUser(request, ctx.services, `${url.pathname}${url.search}`);
  if (user instanceof Response) return user;
  if (!isAdmin(user, ctx.services.settings)) {
    return problemPage("Administrators only", `You are signed in as ${user.sub}, who is not an administrator of this gateway.`, 403, {
      account: await pageAccount(request, ctx.services, { returnTo: `${url.pathname}${url.search}` }),
    });
  }
  return page(request, ctx.services, user, true, url.searchParams.get("done") === "disconnected" ? "Connection reset." : undefined);
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", "x-content-type-options": "nosniff" },
  });
}

/** GET `<basePath>/api/connections`: the signed-in user's connections as JSON. */
export async function connectionsJson(request: Request, ctx: SystemRequestContext): Promise<Response> {
  const user = await getBrowserUser(request, ctx.services);
  if (!user) return json({ error: "not_signed_in", message: "Sign in to the gateway in this browser first." }, 401);
  const list = await rows(ctx.services, user, "user");
  return json({
    user: { sub: user.sub },
    connections: list.map((r) => ({
      id: r.id,
      displayName: r.displayName,
      summary: r.summary,
      authMode: r.authMode,
      connected: r.connected,
      connectedAt: r.connectedAt === undefined ? undefined : new Date(r.connectedAt).toISOString(),
      refreshedAt: r.refreshedAt === undefined ? undefined : new Date(r.refreshedAt).toISOString(),
      expiresAt: r.expiresAt === undefined ? undefined : new Date(r.expiresAt).toISOString(),
      scopes: r.scopes,
      ...(r.connectedBy ? { connectedBy: r.connectedBy } : {}),
    })),
  });
}

/**
 * DELETE `<basePath>/api/connections/<id>`: disconnects. Cross-site pages cannot send DELETE
 * without a CORS preflight the gateway never grants, so the session cookie suffices here.
 */
export async function connectionsDelete(request: Request, ctx: SystemRequestContext): Promise<Response> {
  const user = await getBrowserUser(request, ctx.services);
  if (!user) return json({ error: "not_signed_in" }, 401);
  if (!sameOriginPost(request, ctx.services)) return json({ error: "forbidden_origin" }, 403);
  const entry = ctx.params.id ? upstreamOAuthState(ctx.services).upstreams.get(ctx.params.id) : undefined;
  if (!entry || entry.authMode !== "user-oauth") return json({ error: "not_found" }, 404);
  const removed = await disconnectGrant(ctx.services, entry, user.sub, user.sub);
  return json({ id: entry.id, disconnected: removed }, removed ? 200 : 404);
}
