import { after, test } from "node:test";
import assert from "node:assert/strict";
import { testServices } from "../../test/helpers/test-kit.js";
import { renderSetup, type SetupView } from "./setup-page.js";
import type { OAuthClient } from "./types.js";

const services = testServices();
after(() => services.close());

function view(client: Partial<OAuthClient>, redirectUri: string): SetupView {
  return {
    services,
    requestId: "r".repeat(32),
    csrf: "c".repeat(43),
    client: {
      clientId: "https://claude.example/oauth/client.json",
      kind: "cimd",
      clientName: "Claude <b>",
      clientUri: undefined,
      redirectUris: [redirectUri],
      grantTypes: ["authorization_code"],
      tokenEndpointAuthMethod: "none",
      secretHash: undefined,
      scope: undefined,
      ...client,
    },
    redirectUri,
    resource: "http://gw.test/mcp",
    rc: {
      route: { path: "/mcp", operationId: "mcp" } as never,
      policyName: "auth",
      accessTokenTtlSeconds: 900,
      refreshTokenTtlSeconds: 3600,
      scopesSupported: ["mcp"],
      requiredScopes: [],
      upstreams: [],
    },
    scope: "mcp",
    user: { sub: "alice", data: {} },
    upstreams: [],
  };
}

test("setup page for a URL client id with a loopback redirect URI warns that any local program could be the client", async () => {
  // Anyone can name a well-known client's metadata URL and any loopback port (the MCP
  // authorization spec, "Localhost Redirect URI Risks"): the verified name proves little here.
  const loopback = await renderSetup(view({}, "http://127.0.0.1:49152/callback")).text();
  assert.match(loopback, /class="warn"/);
  assert.match(loopback, /this computer/);
  assert.match(loopback, /Claude &#60;b&#62;/, "the client name is escaped");
  const web = await renderSetup(view({}, "https://claude.example/oauth/callback")).text();
  assert.doesNotMatch(web, /class="warn"/);
  const configured = await renderSetup(view({ kind: "static", clientId: "cli" }, "http://127.0.0.1:49152/callback")).text();
  assert.doesNotMatch(configured, /class="warn"/);
});
