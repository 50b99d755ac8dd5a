/**
 * The gateway's upstream-connection endpoints:
 *
 * | path | what |
 * |---|---|
 * | `GET <basePath>/.well-known/oauth-client/<id>?authProfileId=<id>:<mode>` | the upstream's Client ID Metadata Document |
 * | `GET/POST <basePath>/auth/connections/<id>/connect` | connect link (`redirect=true`: to the upstream; else 428 JSON) and its confirmation form |
 * | `GET <basePath>/auth/connections/<id>/callback` | the upstream's redirect URI |
 * | `<basePath>/connections/<id>/connect`, `…/callback` | the same handlers under their earlier paths |
 * | `GET/POST <basePath>/connections` | the signed-in user's connections (HTML) |
 * | `GET <basePath>/api/connections`, `DELETE …/<id>` | the same as JSON |
 * | `GET/POST <basePath>/admin/connections` | shared connections, administrators only |
 */
import type { GatewayServices } from "../../pipeline/services.js";
import type { SystemRequestContext } from "../../routing/system-routes.js";
import { authProfileId, callbackUrl, clientMetadataUrl, upstreamOAuthState } from "../../oauth/registry.js";
import { gatewayPaths } from "../../routing/gateway-paths.js";
import { clientMetadataDocument } from "../../oauth/registration.js";
import { registerWebRoutes } from "../index.js";
import { connectCallback, connectPage, connectSubmit } from "./connect.js";
import { adminHtml, adminSubmit, connectionsDelete, connectionsHtml, connectionsJson, connectionsSubmit } from "./connections.js";

const registered = new WeakSet<GatewayServices>();

/**
 * Serves an upstream's Client ID Metadata Document (public, cacheable). Its `client_id` is the
 * URL asked for: with `authProfileId` (which must name this upstream and its mode), or without
 * it — the URL grants connected before carried, so their refreshes keep working.
 */
function clientMetadata(request: Request, ctx: SystemRequestContext): Response {
  const entry = ctx.params.id ? upstreamOAuthState(ctx.services).upstreams.get(ctx.params.id) : undefined;
  const notFound = () => new Response(JSON.stringify({ error: "not_found" }), { status: 404, headers: { "content-type": "application/json" } });
  if (!entry) return notFound();
  const profile = new URL(request.url).searchParams.get("authProfileId");
  if (profile !== null && profile !== authProfileId(entry.id, entry.authMode)) return notFound();
  const url = clientMetadataUrl(ctx.services, entry.id, entry.authMode);
  const doc = clientMetadataDocument({
    clientId: profile === null ? url.slice(0, url.indexOf("?")) : url,
    clientName: entry.displayName,
    redirectUri: callbackUrl(ctx.services, entry.id),
    clientUri: ctx.services.settings.publicUrl,
  });
  return new Response(JSON.stringify(doc), {
    headers: { "content-type": "application/json", "cache-control": "public, max-age=300", "access-control-allow-origin": "*" },
  });
}

/** Registers the endpoints once per gateway services object. */
export function registerConnectRoutes(services: GatewayServices): void {
  if (registered.has(services)) return;
  registered.add(services);
  registerWebRoutes(services);
  const base = services.settings.basePath;
  const r = services.systemRoutes;
  const p = gatewayPaths(base);
  r.add(["GET"], p.clientMetadata, clientMetadata);
  for (const path of [p.connect, p.legacy.connect]) {
    r.add(["GET"], path, connectPage);
    r.add(["POST"], path, connectSubmit);
  }
  for (const path of [p.connectCallback, p.legacy.connectCallback]) r.add(["GET"], path, connectCallback);
  r.add(["GET"], `${base}/connections`, connectionsHtml);
  r.add(["POST"], `${base}/connections`, connectionsSubmit);
  r.add(["GET"], `${base}/api/connections`, connectionsJson);
  r.add(["DELETE"], `${base}/api/connections/:id`, connectionsDelete);
  r.add(["GET"], `${base}/admin/connections`, adminHtml);
  r.add(["POST"], `${base}/admin/connections`, adminSubmit);
}
