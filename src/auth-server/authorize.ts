/**
 * The authorization endpoint (`B/oauth/authorize[R]`): checks the request, stores it as a
 * pending authorization, and sends the browser through sign-in to the setup page (`setup.ts`).
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
import { escapeHtml, htmlPage, redirect, type PageAccount } from "../web/html.js";
import { gatewayPaths } from "../routing/gateway-paths.js";
import { pageAccount, requireBrowserUser } from "../web/session.js";
import { findClient, isLoopbackRedirect, redirectUriMatches, scopeList, TOLERATED_SCOPES } from "./clients.js";
import { random, sha256, single } from "./http.js";
import type { AuthServer } from "./server.js";
import { NS, type PendingAuthorization } from "./types.js";

/** An error page (no redirect): for requests whose client or redirect URI is not verified. */
export function errorPage(message: string, status = 400, account?: PageAccount): Response {
  return htmlPage(
    "Authorization request refused",
    `<h1>Authorization request refused</h1><p>${escapeHtml(message)}</p>` +
      `<p class="muted">The application that sent you here may be misconfigured. You can close this page.</p>`,
    { status, account },
  );
}

/**
 * The redirect back to the client carrying `params` plus `state` and `iss` (the issuer whose
 * metadata the client started from: the route's own, or the origin's).
 */
export function backToClient(issuer: string, redirectUri: string, state: string | undefined, params: Record<string, string>): Response {
  const u = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  if (state !== undefined) u.searchParams.set("state", state);
  u.searchParams.set("iss", issuer);
  return redirect(u.href, { status: 303 });
}

/** The setup page of a pending authorization (same-origin path). */
export function setupPath(as: AuthServer, id: string): string {
  return `${gatewayPaths(as.services.settings.basePath).setup}?req=${id}`;
}

/**
 * The resource of an authorization request: the route named by the endpoint path
 * (`B/oauth/authorize{R}`), the `resource` parameter, or — when neither names one and the
 * gateway protects exactly one route without path parameters — that route.
 */
function chooseResource(as: AuthServer, request: Request, routePrefix: string | undefined, q: URLSearchParams): string | { error: string } {
  const given = [...new Set(q.getAll("resource"))];
  if (given.length > 1) return { error: "Only one resource parameter is supported." };
  if (routePrefix !== undefined) {
    const implied = `${as.issuer}${new URL(request.url).pathname.slice(routePrefix.length)}`;
    if (given.length && given[0] !== implied) return { error: "The resource differs from the route this endpoint serves." };
    return implied;
  }
  if (given.length) return given[0]!;
  const concrete = as.resourceConfigs().filter((rc) => !rc.route.path.includes("{"));
  if (concrete.length === 1 && as.resourceConfigs().length === 1) return `${as.issuer}${concrete[0]!.route.path}`;
  return { error: "The resource parameter is required: this gateway serves several MCP routes." };
}

const CHALLENGE_RE = /^[A-Za-z0-9_-]{43}$/;

/**
 * GET `B/oauth/authorize` and `B/oauth/authorize{R}` (`routePrefix` = `B/oauth/authorize`: the
 * rest of the path is the route, and the route's issuer answers).
 */
export async function authorize(as: AuthServer, request: Request, ctx: SystemRequestContext, routePrefix?: string): Promise<Response> {
  const { services } = ctx;
  const q = new URL(request.url).searchParams;
  const refused = async (message: string) => errorPage(message, 400, await pageAccount(request, services));
  const clientId = single(q, "client_id");
  if (!clientId) return refused("The request does not name its application (client_id).");
  const client = await findClient(services, as.config, clientId);
  if (!client) return refused("The application is unknown, or its metadata document could not be loaded.");
  const given = single(q, "redirect_uri");
  if (given === null) return refused("The request names more than one redirect address.");
  let redirectUri: string;
  if (given === undefined) {
    if (client.redirectUris.length !== 1) return refused("The request does not name its redirect address (redirect_uri).");
    redirectUri = client.redirectUris[0]!;
  } else if (redirectUriMatches(client.redirectUris, given)) {
    redirectUri = given;
  } else {
    services.log.info({ clientId }, "authorization request with an unregistered redirect_uri refused");
    return refused("The redirect address is not registered for this application.");
  }

  const stateParam = single(q, "state");
  const state = stateParam ?? undefined;
  const trusted = client.kind === "static" || isLoopbackRedirect(redirectUri);
  const issuer = routePrefix !== undefined ? `${as.issuer}${new URL(request.url).pathname.slice(routePrefix.length)}` : as.issuer;
  const fail = (error: string, description: string) =>
    trusted ? backToClient(issuer, redirectUri, state, { error, error_description: description }) : refused(description);
  if (stateParam === null) return fail("invalid_request", "state is repeated.");
  const responseType = single(q, "response_type");
  if (!responseType) return fail("invalid_request", "response_type is required.");
  if (responseType !== "code") return fail("unsupported_response_type", "Only response_type=code is supported.");
  const challenge = single(q, "code_challenge");
  if (!challenge || !CHALLENGE_RE.test(challenge)) return fail("invalid_request", "A PKCE code_challenge is required.");
  if (single(q, "code_challenge_method") !== "S256") return fail("invalid_request", "code_challenge_method must be S256.");
  const resource = chooseResource(as, request, routePrefix, q);
  if (typeof resource !== "string") return fail("invalid_target", resource.error);
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
    issuer,
    createdAt: services.now(),
  };
  await services.store.put(NS.pending, sha256(id), pending, { ttlSeconds: as.config.pendingTtlSeconds });
  const next = setupPath(as, id);
  const user = await requireBrowserUser(request, services, next);
  if (user instanceof Response) return user;
  return redirect(next);
}

