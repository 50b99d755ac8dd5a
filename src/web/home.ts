/**
 * `GET /`: a small page naming the gateway's routes — path, the upstream's display name, the URL
 * an MCP client is given — and linking the connections page, so that opening the gateway's
 * address in a browser answers "what is this, and where do I go". `Accept: application/json`
 * gets the same as JSON.
 *
 * It shows only what the configuration says about the routes — no upstream URLs, no options —
 * and, like every gateway page, who is signed in (with sign-out), or that nobody is; nobody
 * needs to be. It is not registered when the project has its own
 * `GET /` route: the project's route wins.
 */
import type { GatewayServices } from "../pipeline/services.js";
import type { Project } from "../project/types.js";
import { upstreamOAuthState } from "../oauth/registry.js";
import { compilePath } from "../routing/match.js";
import { escapeHtml as e, htmlPage, type PageAccount } from "./html.js";
import { pageAccount } from "./session.js";

interface HomeRoute {
  path: string;
  /** The upstream's display name, else the route's operationId. */
  name: string;
  methods: string[];
  mcp: boolean;
  /** The address to give an MCP client (MCP routes without path parameters). */
  url?: string | undefined;
}

function describe(project: Project, services: GatewayServices): HomeRoute[] {
  // Read per request: the upstreams are those of the policies of this gateway build.
  const upstreams = [...upstreamOAuthState(services).upstreams.values()];
  return project.routes.map((route) => {
    const upstream = upstreams.find((u) => u.operationIds.includes(route.operationId));
    return {
      path: route.path,
      name: upstream?.displayName ?? route.operationId,
      methods: route.methods,
      mcp: route.mcp,
      url: route.mcp && !route.path.includes("{") ? `${services.settings.publicUrl}${route.path}` : undefined,
    };
  });
}

function render(routes: HomeRoute[], connections: string | undefined, account: PageAccount | undefined): Response {
  const items = routes
    .map(
      (r) =>
        `<li><span><strong>${e(r.name)}</strong><br><code>${e(r.path)}</code>` +
        (r.url ? `<br><span class="muted">MCP server URL: <code>${e(r.url)}</code></span>` : "") +
        `</span><span class="badge${r.mcp ? "" : " off"}">${r.mcp ? "MCP" : e(r.methods.join(", "))}</span></li>`,
    )
    .join("");
  const body =
    `<h1>Tollgate MCP gateway</h1>` +
    (routes.length
      ? `<p>Routes of this gateway. Give an MCP client the server URL of a route; it signs you in where the route asks for it.</p><ul class="list">${items}</ul>`
      : `<p>This gateway has no routes yet.</p>`) +
    (connections
      ? `<p><a class="button secondary" href="${e(connections)}">Your connections</a></p>` +
        `<p class="muted">The services you connected through this gateway, and where to disconnect them.</p>`
      : "");
  return htmlPage("Tollgate MCP gateway", body, { account });
}

/** Registers `GET /` unless a project route answers `GET /`. */
export function registerHomePage(services: GatewayServices, project: Project): void {
  const taken = project.routes.some((r) => (r.methods.includes("GET") || r.methods.includes("HEAD")) && compilePath(r.path).match("/"));
  if (taken) return;
  services.systemRoutes.add(["GET"], "/", async (request) => {
    const connectionsPath = `${services.settings.basePath}/connections`;
    const found = services.systemRoutes.match("GET", connectionsPath);
    const connections = found && "handler" in found ? `${services.settings.publicUrl}${connectionsPath}` : undefined;
    const routes = describe(project, services);
    if (/\bapplication\/json\b/i.test(request.headers.get("accept") ?? "") && !/\btext\/html\b/i.test(request.headers.get("accept") ?? "")) {
      return new Response(JSON.stringify({ routes, connections: connections ?? null }), {
        headers: { "content-type": "application/json", "cache-control": "no-store", "x-content-type-options": "nosniff" },
      });
    }
    return render(routes, connections, await pageAccount(request, services, { returnTo: "/", signInReturnTo: connections && connectionsPath }));
  });
}
