/**
 * Every MCP policy example of the original product's policy catalog, and the set-ups of its IdP
 * guides, written as projects from the documented option blocks: each must `validate` with no
 * error and no "ignored" warning, and start (in-process, then closed; no IdP is contacted at
 * start-up by these presets).
 *
 * Where a documented example breaks the product's own schema, the project carries the smallest
 * fix, named in `fix`:
 * - the Auth0 catalog example has no `clientId` (required by the same page's schema);
 * - the generic `mcp-oauth-inbound` example has `tokenUrl` but no `clientId`;
 * - the token-exchange example has no `authMode` (now defaulted) and an empty `idJag` (which the
 *   schema forbids outside `authMode: "id-jag"`): the `idJag` is dropped.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { loadProject } from "../../src/project/load.js";
import { startGateway, writeProject } from "../helpers/harness.js";

const ENV = {
  CLIENT_ID: "gateway-client",
  CLIENT_SECRET: "gateway-client-secret",
  GOOGLE_CLIENT_ID: "1234567890-abc123.apps.googleusercontent.com",
  WORKOS_CLIENT_ID: "client_01HZZZZZZZZZZZZZZZZZZZZZZZ",
};

/** The documented defaults every catalog example spells out. */
const TIMINGS = {
  browserLoginOverrides: { remoteTimeoutMs: 10000, sessionTtlSeconds: 28800, stateTtlSeconds: 900 },
  gateway: { accessTokenTtlSeconds: 900, cimdEnabled: true, refreshTokenTtlSeconds: 2592000 },
  scope: "openid profile email",
};
const CLIENT = { clientId: "$env(CLIENT_ID)", clientSecret: "$env(CLIENT_SECRET)" };

interface Example {
  /** Where it comes from. */
  source: string;
  policyType: string;
  export: string;
  module?: string;
  options: Record<string, unknown>;
  /** The smallest change that makes a self-contradicting example valid, said in words. */
  fix?: string;
}

const OAUTH: Example[] = [
  {
    source: "policy catalog: mcp-oauth-inbound",
    policyType: "mcp-oauth-inbound",
    export: "McpOAuthInboundPolicy",
    options: {
      browserLogin: {
        clientId: "$env(CLIENT_ID)",
        clientSecret: "$env(CLIENT_SECRET)",
        remoteTimeoutMs: 10000,
        scope: "openid profile email",
        sessionTtlSeconds: 28800,
        stateTtlSeconds: 900,
        tokenUrl: "https://my-tenant.us.auth0.com/oauth/token",
        url: "https://my-tenant.us.auth0.com/authorize",
      },
      gateway: TIMINGS.gateway,
      oidc: { issuer: "https://my-tenant.us.auth0.com/", jwksUrl: "https://my-tenant.us.auth0.com/.well-known/jwks.json" },
    },
    fix: "browserLogin.clientId added",
  },
  {
    source: "generic OIDC guide (federated, S256)",
    policyType: "mcp-oauth-inbound",
    export: "McpOAuthInboundPolicy",
    module: "$import(@zuplo/runtime/mcp-gateway)",
    options: {
      oidc: { issuer: "https://auth.example.com/", jwksUrl: "https://auth.example.com/.well-known/jwks.json", audience: "https://gateway.example.com" },
      browserLogin: {
        url: "https://auth.example.com/oauth2/auth",
        tokenUrl: "https://auth.example.com/oauth2/token",
        clientId: "$env(CLIENT_ID)",
        clientSecret: "$env(CLIENT_SECRET)",
        audience: "https://gateway.example.com",
        pkce: "S256",
      },
    },
  },
  {
    source: "quickstart (local dev): the dev login set-up",
    policyType: "mcp-oauth-inbound",
    export: "McpOAuthInboundPolicy",
    module: "$import(@zuplo/runtime/mcp-gateway)",
    options: {
      oidc: { issuer: "http://127.0.0.1:9000", jwksUrl: "http://127.0.0.1:9000/.well-known/jwks.json" },
      browserLogin: { url: "http://127.0.0.1:9000/__zuplo/oauth/dev-login" },
    },
  },
  {
    source: "policy schema text: dev login without the base path",
    policyType: "mcp-oauth-inbound",
    export: "McpOAuthInboundPolicy",
    options: {
      oidc: { issuer: "http://localhost:9000/", jwksUrl: "http://localhost:9000/dev/jwks" },
      browserLogin: { url: "http://127.0.0.1:9000/oauth/dev-login" },
    },
  },
  {
    source: "policy catalog: mcp-auth0-oauth-inbound",
    policyType: "mcp-auth0-oauth-inbound",
    export: "McpAuth0OAuthInboundPolicy",
    options: { ...TIMINGS, ...CLIENT, audience: "https://gateway.example.com", auth0Domain: "my-tenant.us.auth0.com" },
    fix: "clientId added",
  },
  { source: "policy catalog: mcp-clerk-oauth-inbound", policyType: "mcp-clerk-oauth-inbound", export: "McpClerkOAuthInboundPolicy", options: { ...TIMINGS, ...CLIENT, frontendApiUrl: "https://verb-noun-00.clerk.accounts.dev" } },
  {
    source: "policy catalog: mcp-cognito-oauth-inbound",
    policyType: "mcp-cognito-oauth-inbound",
    export: "McpCognitoOAuthInboundPolicy",
    options: { ...TIMINGS, ...CLIENT, awsRegion: "us-east-1", userPoolId: "us-east-1_AbCdEf123", userPoolDomain: "my-app.auth.us-east-1.amazoncognito.com" },
  },
  {
    source: "policy catalog: mcp-entra-oauth-inbound",
    policyType: "mcp-entra-oauth-inbound",
    export: "McpEntraOAuthInboundPolicy",
    options: { ...TIMINGS, ...CLIENT, tenantId: "00000000-0000-0000-0000-000000000000" },
  },
  {
    source: "policy catalog: mcp-google-oauth-inbound",
    policyType: "mcp-google-oauth-inbound",
    export: "McpGoogleOAuthInboundPolicy",
    options: { ...TIMINGS, clientId: "$env(GOOGLE_CLIENT_ID)", clientSecret: "$env(CLIENT_SECRET)" },
  },
  {
    source: "policy catalog: mcp-keycloak-oauth-inbound",
    policyType: "mcp-keycloak-oauth-inbound",
    export: "McpKeycloakOAuthInboundPolicy",
    options: { ...TIMINGS, ...CLIENT, keycloakBaseUrl: "https://keycloak.example.com", realm: "my-realm" },
  },
  { source: "policy catalog: mcp-logto-oauth-inbound", policyType: "mcp-logto-oauth-inbound", export: "McpLogtoOAuthInboundPolicy", options: { ...TIMINGS, ...CLIENT, logtoEndpoint: "https://abc123.logto.app" } },
  { source: "policy catalog: mcp-okta-oauth-inbound (org server)", policyType: "mcp-okta-oauth-inbound", export: "McpOktaOAuthInboundPolicy", options: { ...TIMINGS, ...CLIENT, oktaDomain: "my-org.okta.com" } },
  {
    source: "Okta guide (custom authorization server)",
    policyType: "mcp-okta-oauth-inbound",
    export: "McpOktaOAuthInboundPolicy",
    module: "$import(@zuplo/runtime/mcp-gateway)",
    options: { ...CLIENT, oktaDomain: "my-org.okta.com", authorizationServerId: "default" },
  },
  { source: "policy catalog: mcp-onelogin-oauth-inbound", policyType: "mcp-onelogin-oauth-inbound", export: "McpOneLoginOAuthInboundPolicy", options: { ...TIMINGS, ...CLIENT, oneLoginSubdomain: "acme" } },
  {
    source: "policy catalog: mcp-ping-oauth-inbound",
    policyType: "mcp-ping-oauth-inbound",
    export: "McpPingOAuthInboundPolicy",
    options: { ...TIMINGS, ...CLIENT, environmentId: "abcdef01-2345-6789-abcd-ef0123456789", region: "north-america" },
  },
  {
    source: "PingOne guide (custom domain, PKCE)",
    policyType: "mcp-ping-oauth-inbound",
    export: "McpPingOAuthInboundPolicy",
    module: "$import(@zuplo/runtime/mcp-gateway)",
    options: { ...CLIENT, customDomain: "login.example.com", browserLoginOverrides: { pkce: "S256" } },
  },
  { source: "policy catalog: mcp-workos-oauth-inbound", policyType: "mcp-workos-oauth-inbound", export: "McpWorkosOAuthInboundPolicy", options: { ...TIMINGS, clientId: "$env(WORKOS_CLIENT_ID)", clientSecret: "$env(CLIENT_SECRET)" } },
];

const TOKEN_EXCHANGE = {
  name: "mcp-token-exchange-linear",
  policyType: "mcp-token-exchange-inbound",
  handler: {
    module: "$import(@zuplo/runtime)",
    export: "McpTokenExchangeInboundPolicy",
    // Catalog example; fix: its empty `idJag` dropped (authMode defaults to user-oauth).
    options: { displayName: "Linear", summary: "Linear issues", clientRegistration: { mode: "auto" }, prompt: "consent", scopeDelimiter: " " },
  },
};

const FILTER = {
  name: "curated",
  policyType: "mcp-capability-filter-inbound",
  handler: {
    module: "$import(@zuplo/runtime)",
    export: "McpCapabilityFilterInboundPolicy",
    options: { prompts: [], resourceTemplates: [], resources: [], tools: [] },
  },
};

const ROLES_FILTER = {
  name: "by-role",
  policyType: "mcp-capability-filter-inbound",
  handler: {
    module: "$import(@zuplo/runtime/mcp-gateway)",
    export: "McpCapabilityFilterInboundPolicy",
    options: {
      accessControl: { mode: "rolesAndGroups", roleClaim: "roles", groupClaim: "groups" },
      tools: [{ name: "list_issues", public: true }, { name: "create_issue", roles: ["editor"] }, { name: "delete_issue", groups: ["admins"] }],
      prompts: [{ name: "triage", groups: ["support"], description: "Triage an issue" }],
      resources: [{ uri: "file:///readme.md", public: true, mimeType: "text/markdown" }],
      resourceTemplates: [{ uriTemplate: "issue://{id}", roles: ["viewer"] }],
    },
  },
};

/** A project with `auth` (the example) on an MCP route, plus `extra` policies after it. */
function project(auth: Example, extra: Array<{ name: string }> = []): Record<string, string> {
  return {
    "config/policies.json": JSON.stringify({
      policies: [{ name: "mcp-auth", policyType: auth.policyType, handler: { module: auth.module ?? "$import(@zuplo/runtime)", export: auth.export, options: auth.options } }, ...extra],
    }),
    "config/routes.oas.json": JSON.stringify({
      openapi: "3.1.0",
      info: { title: "compat", version: "1" },
      paths: {
        "/mcp/linear-v1": {
          "get,post": {
            operationId: "linear-v1",
            "x-zuplo-route": {
              corsPolicy: "none",
              handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: "McpProxyHandler", options: { rewritePattern: "https://mcp.linear.app/mcp" } },
              policies: { inbound: ["mcp-auth", ...extra.map((p) => p.name)] },
            },
          },
        },
      },
    }),
  };
}

/** Validates (no errors, no "ignored" warnings) and starts the project, then stops it. */
async function validateAndStart(files: Record<string, string>): Promise<void> {
  const dir = await writeProject(files);
  const loaded = await loadProject(dir, { env: ENV });
  assert.deepEqual(loaded.warnings.filter((w) => /ignored/.test(w.message)), []);
  const gw = await startGateway({ projectDir: dir, env: ENV });
  try {
    const prm = await fetch(`${gw.url}/.well-known/oauth-protected-resource/mcp/linear-v1`);
    assert.equal(prm.status, 200);
  } finally {
    await gw.close();
  }
}

describe("documented MCP OAuth policy examples validate and start", () => {
  for (const ex of OAUTH) {
    test(`${ex.source}${ex.fix ? ` (fix: ${ex.fix})` : ""}`, () => validateAndStart(project(ex)));
  }
});

describe("documented token exchange and capability filter examples", () => {
  const auth = OAUTH[4]!; // Auth0, as in the upstream OAuth guide
  test("token exchange catalog example behind the Auth0 policy (fix: empty idJag dropped)", () => validateAndStart(project(auth, [TOKEN_EXCHANGE])));
  test("capability filter catalog example, and roles/groups markup on every capability type", () =>
    validateAndStart(project(auth, [TOKEN_EXCHANGE, FILTER, ROLES_FILTER])));
});
