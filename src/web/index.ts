/**
 * The gateway's browser-facing layer: page rendering (`html.ts`), browser sessions
 * (`session.ts`) and sign-in (`login/`). Pages that need a signed-in user call
 * {@link ensureWebRoutes} once at build time, then `requireBrowserUser` per request.
 */
import type { GatewayServices } from "../pipeline/services.js";
import { registerLoginRoutes } from "./login/index.js";

export * from "./html.js";
export * from "./session.js";
export { isLoopbackAddress, idpRedirectUri } from "./login/index.js";

const registered = new WeakSet<GatewayServices>();

/**
 * Registers the browser endpoints (login, IdP callback, dev login, logout) on
 * `services.systemRoutes`. Idempotent per services object.
 */
export function registerWebRoutes(services: GatewayServices): void {
  if (registered.has(services)) return;
  registered.add(services);
  registerLoginRoutes(services);
}

/** Alias of {@link registerWebRoutes} for policies and handlers that render pages. */
export const ensureWebRoutes = registerWebRoutes;
