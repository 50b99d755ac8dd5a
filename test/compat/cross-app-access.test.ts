/**
 * Cross-app access projects as the original product documents them validate and start
 * unchanged: the configuration reference's `id-jag` upstream (client_secret_post at both
 * servers, `mcp:tools`), behind an `mcp-oauth-inbound` policy set up as the quickstart says
 * (`browserLogin.pkce: "S256"`, `oidc.audience` = `browserLogin.audience` = the gateway origin,
 * routes keyed `"post"`), and the same with cross-app access inbound (`idJag` on the MCP OAuth
 * policy). No IdP or resource AS is contacted at start-up.
 */
import assert from "node:assert/strict";
import { generateKeyPair, exportPKCS8 } from "jose";
import { test } from "node:test";
import { loadProject } from "../../src/project/load.js";
import { startGateway, writeProject } from "../helpers/harness.js";

const ENV = {
  IDP_CLIENT_ID: "gateway-at-idp",
  IDP_CLIENT_SECRET: "gateway-idp-secret",
  RESOURCE_CLIENT_ID: "gateway-at-resource",
  RESOURCE_CLIENT_SECRET: "gateway-resource-secret",
};
const GATEWAY = "https://my-gateway.example.com";

const SECRET_AUTH = { method: "client_secret_post", clientId: "$env(RESOURCE_CLIENT_ID)", clientSecret: "$env(RESOURCE_CLIENT_SECRET)" };

/** The project; `methods` is the routes' methods key, `idJag` the MCP OAuth policy's inbound cross-app access. */
function project(clientAuth: Record<string, unknown>, opts: { methods?: string; idJag?: Record<string, unknown> } = {}): Record<string, string> {
  return {
    "config/policies.json": JSON.stringify({
      policies: [
        {
          name: "mcp-oauth-inbound",
          policyType: "mcp-oauth-inbound",
          handler: {
            module: "$import(@zuplo/runtime/mcp-gateway)",
            export: "McpOAuthInboundPolicy",
            options: {
              oidc: { issuer: "https://idp.example.com", jwksUrl: "https://idp.example.com/jwks", audience: GATEWAY },
              browserLogin: {
                url: "https://idp.example.com/authorize",
                tokenUrl: "https://idp.example.com/token",
                clientId: "$env(IDP_CLIENT_ID)",
                clientSecret: "$env(IDP_CLIENT_SECRET)",
                audience: GATEWAY,
                pkce: "S256",
              },
              ...(opts.idJag ? { idJag: opts.idJag } : {}),
            },
          },
        },
        {
          name: "id-jag-upstream",
          policyType: "mcp-token-exchange-inbound",
          handler: {
            module: "$import(@zuplo/runtime/mcp-gateway)",
            export: "McpTokenExchangeInboundPolicy",
            options: {
              displayName: "Upstream",
              authMode: "id-jag",
              idJag: {
                scopes: ["mcp:tools"],
                scopeDelimiter: " ",
                idp: {
                  tokenUrl: "https://idp.example.com/token",
                  clientAuth: { method: "client_secret_post", clientId: "$env(IDP_CLIENT_ID)", clientSecret: "$env(IDP_CLIENT_SECRET)" },
                },
                resourceAs: { tokenUrl: "https://auth.resource.example.com/token", audience: "https://auth.resource.example.com", clientAuth },
              },
            },
          },
        },
      ],
    }),
    "config/routes.oas.json": JSON.stringify({
      openapi: "3.1.0",
      info: { title: "xaa", version: "1" },
      paths: {
        "/mcp/upstream": {
          [opts.methods ?? "get,post,delete"]: {
            operationId: "upstream",
            "x-zuplo-route": {
              corsPolicy: "none",
              handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: "McpProxyHandler", options: { rewritePattern: "https://mcp.resource.example.com/mcp" } },
              policies: { inbound: ["mcp-oauth-inbound", "id-jag-upstream"] },
            },
          },
        },
      },
    }),
  };
}

async function validateAndStart(files: Record<string, string>, grantTypes = ["authorization_code", "refresh_token"]): Promise<void> {
  const dir = await writeProject(files);
  const loaded = await loadProject(dir, { env: ENV });
  assert.deepEqual(loaded.warnings.filter((w) => /ignored/.test(w.message)), []);
  const gw = await startGateway({ projectDir: dir, env: ENV });
  try {
    const prm = await fetch(`${gw.url}/.well-known/oauth-protected-resource/mcp/upstream`);
    assert.equal(prm.status, 200);
    const meta = (await (await fetch(`${gw.url}/.well-known/oauth-authorization-server/mcp/upstream`)).json()) as { grant_types_supported: string[] };
    assert.deepEqual(meta.grant_types_supported, grantTypes);
    // Unauthenticated callers get the gateway's own challenge, never the upstream's.
    const res = await fetch(`${gw.url}/mcp/upstream`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(res.status, 401);
    await res.text();
  } finally {
    await gw.close();
  }
}

test("configuration reference id-jag upstream behind the quickstart's MCP OAuth set-up", () => validateAndStart(project(SECRET_AUTH)));

test("the quickstart's routes keyed \"post\" only", () => validateAndStart(project(SECRET_AUTH, { methods: "post" })));

test("with cross-app access inbound too: the JWT bearer grant is advertised on the route", () =>
  validateAndStart(project(SECRET_AUTH, { methods: "post", idJag: { enabled: true, trustedIssuers: [{ subjectMapping: "iss_prefix" }] } }), [
    "authorization_code",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
  ]));

test("the same with private_key_jwt at the resource AS (EC key, kid)", async () => {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  await validateAndStart(project({ method: "private_key_jwt", clientId: "$env(RESOURCE_CLIENT_ID)", privateKeyPem: await exportPKCS8(privateKey), algorithm: "ES256", keyId: "k1" }));
});

test("a private key that is not PKCS#8 for the algorithm stops start-up, naming the policy", async () => {
  const dir = await writeProject(project({ method: "private_key_jwt", clientId: "c", privateKeyPem: "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----" }));
  await assert.rejects(startGateway({ projectDir: dir, env: ENV }), (err: Error) => /id-jag-upstream/.test(err.message) && /privateKeyPem/.test(err.message) && !/nope/.test(err.message));
});
