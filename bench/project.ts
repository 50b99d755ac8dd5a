/**
 * The Tollgate project the benchmark runs: one MCP route with JWT auth, a static header and the
 * MCP proxy (`/mcp`), the MCP proxy without any policy (`/mcp-bare`), and — when the
 * token-exchange policy is available — the JWT route with `mcp-token-exchange-inbound` added
 * (`/mcp-tx`).
 */
import fs from "node:fs";
import path from "node:path";

export interface BenchProjectOptions {
  upstreamUrl: string;
  issuer: string;
  audience: string;
  jwksUrl: string;
  /** Adds the `/mcp-tx` route with the token-exchange policy. */
  tokenExchange: boolean;
}

const RUNTIME = "$import(@zuplo/runtime)";
const MCP = "$import(@zuplo/runtime/mcp-gateway)";

/** Upstream id of the token-exchange policy (the grant's key). */
export const TX_UPSTREAM_ID = "bench";
export const TX_POLICY = `mcp-token-exchange-${TX_UPSTREAM_ID}`;

function route(operationId: string, upstreamUrl: string, inbound: string[]) {
  return {
    "get,post,delete": {
      operationId,
      "x-zuplo-route": {
        corsPolicy: "none",
        handler: { module: MCP, export: "McpProxyHandler", options: { rewritePattern: upstreamUrl } },
        policies: { inbound },
      },
    },
  };
}

/** Writes the project into `dir` (created). */
export function writeBenchProject(dir: string, o: BenchProjectOptions): void {
  const policies: unknown[] = [
    {
      name: "jwt",
      policyType: "open-id-jwt-auth-inbound",
      handler: {
        module: RUNTIME,
        export: "OpenIdJwtInboundPolicy",
        options: { issuer: o.issuer, audience: o.audience, jwkUrl: o.jwksUrl },
      },
    },
    {
      name: "bench-headers",
      policyType: "set-headers-inbound",
      handler: {
        module: RUNTIME,
        export: "SetHeadersInboundPolicy",
        options: { headers: [{ name: "x-bench-tenant", value: "acme" }] },
      },
    },
  ];
  const paths: Record<string, unknown> = {
    "/mcp": route("bench-mcp", o.upstreamUrl, ["jwt", "bench-headers"]),
    "/mcp-bare": route("bench-mcp-bare", o.upstreamUrl, []),
  };
  if (o.tokenExchange) {
    policies.push({
      name: TX_POLICY,
      policyType: "mcp-token-exchange-inbound",
      handler: {
        module: MCP,
        export: "McpTokenExchangeInboundPolicy",
        options: {
          displayName: "Bench upstream",
          authMode: "user-oauth",
          clientRegistration: { mode: "manual", clientId: "bench-client", tokenEndpointAuthMethod: "none" },
        },
      },
    });
    paths["/mcp-tx"] = route("bench-mcp-tx", o.upstreamUrl, ["jwt", "bench-headers", TX_POLICY]);
  }
  const files: Record<string, unknown> = {
    "zuplo.jsonc": { version: 1, compatibilityDate: "2026-03-01" },
    "config/policies.json": { policies },
    "config/routes.oas.json": { openapi: "3.1.0", info: { title: "tollgate-bench", version: "1" }, paths },
  };
  for (const [rel, value] of Object.entries(files)) {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
  }
}
