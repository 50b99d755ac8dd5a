/**
 * The gateway's upstream-connection endpoints:
 *
 * | path | what |
 * |---|---|
 * | `GET <basePath>/.well-known/oauth-client/<id>` | the upstream's Client ID Metadata Document |
 * | `GET/POST <basePath>/connections/<id>/connect` | connect link and its confirmation form |
 * | `GET <basePath>/connections/<id>/callback` | the upstream's redirect URI |
 * | `GET/POST <basePath>/connections` | the signed-in user's connections (HTML) |
 * | `GET <basePath>/api/connections`, `DELETE …/<id>` | the same as JSON |
 * | `GET/POST <basePath>/admin/connections` | shared connections, administrators only |
 */
import type { GatewayServices } from "../../pipeline/services.js";
import type { SystemRequestContext } from "../../routing/system-routes.js";
import { callbackUrl, clientMetadataUrl, upstreamOAuthState } from "../../oauth/registry.js";
import { clientMetadataDocument } from "../../oauth/registration.js";
import { registerWebRoutes } from "../index.js";
import { connectCallback, connectPage, connectSubmit } from "./connect.js";
import { adminHtml, adminSubmit, connectionsDelete, connectionsHtml, connectionsJson, connectionsSubmit } from "./connections.js";

const registered = new WeakSet<GatewayServices>();

/** Serves an upstream's Client ID Metadata Document (public, cacheable). */
function clientMetadata(_request: Request, ctx: SystemRequestContext): Response {
  const entry = ctx.params.id ? upstreamOAuthState(ctx.services).upstreams.get(ctx.params.id) : undefined;
  if (!entry) return new Response(JSON.stringify({ error: "not_found" }), { status: 404, headers: { "content-type": "application/json" } });
  const doc = clientMetadataDocument({
    clientId: clientMetadataUrl(ctx.services, entry.id),
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
  r.add(["GET"], `${base}/.well-known/oauth-client/:id`, clientMetadata);
  r.add(["GET"], `${base}/connections/:id/connect`, connectPage);
  r.add(["POST"], `${base}/connections/:id/connect`, connectSubmit);
  r.add(["GET"], `${base}/connections/:id/callback`, connectCallback);
  r.add(["GET"], `${base}/connections`, connectionsHtml);
  r.add(["POST"], `${base}/connections`, connectionsSubmit);
  r.add(["GET"], `${base}/api/connections`, connectionsJson);
  r.add(["DELETE"], `${base}/api/connections/:id`, connectionsDelete);
  r.add(["GET"], `${base}/admin/connections`, adminHtml);
  r.add(["POST"], `${base}/admin/connections`, adminSubmit);
}
