/**
 * Minimal stand-ins for built-ins that project-loading tests reference. Each is registered only
 * when the real built-in is not (yet) registered, so tests exercise the real one whenever it
 * exists. The fakes carry just what the loader's rules look at: kind, policyTypes, the
 * `authenticates`/`mcpFeature`/`mcp` flags and a small zod options schema.
 */
import { z } from "zod";
import "../../src/policies/index.js";
import {
  findBuiltin,
  MCP_GATEWAY_MODULE,
  registerBuiltin,
  RUNTIME_MODULE,
  type Builtin,
} from "../../src/policies/registry.js";

const notImplemented = () => () => new Response("fake built-in", { status: 501 });

const FAKES: Builtin[] = [
  {
    kind: "handler",
    exportName: "McpProxyHandler",
    modules: [MCP_GATEWAY_MODULE, RUNTIME_MODULE],
    optionsSchema: z.object({ rewritePattern: z.string().min(1) }).passthrough(),
    mcpFeature: true,
    mcp: true,
    create: notImplemented,
  },
  {
    kind: "inbound",
    exportName: "McpTokenExchangeInboundPolicy",
    modules: [MCP_GATEWAY_MODULE],
    policyTypes: ["mcp-token-exchange-inbound"],
    optionsSchema: z
      .object({
        id: z.string().optional(),
        authMode: z.enum(["user-oauth", "shared-oauth"]).default("user-oauth"),
        clientRegistration: z
          .object({ mode: z.enum(["auto", "manual"]), clientId: z.string().optional(), clientSecret: z.string().optional() })
          .optional(),
      })
      .passthrough(),
    mcpFeature: true,
    create: () => (request) => request,
  },
  {
    kind: "inbound",
    exportName: "McpOAuthInboundPolicy",
    modules: [MCP_GATEWAY_MODULE],
    policyTypes: ["mcp-oauth-inbound", "mcp-auth0-oauth-inbound", "mcp-okta-oauth-inbound"],
    optionsSchema: z.object({}).passthrough(),
    mcpFeature: true,
    authenticates: true,
    create: () => (request) => request,
  },
  {
    kind: "inbound",
    exportName: "SetHeadersInboundPolicy",
    modules: [RUNTIME_MODULE],
    policyTypes: ["set-headers-inbound"],
    optionsSchema: z.object({
      headers: z.array(z.object({ name: z.string(), value: z.string(), overwrite: z.boolean().default(true) })).min(1),
    }),
    mcpFeature: false,
    create: () => (request) => request,
  },
];

/** Registers each fake whose real counterpart is missing; returns the names it registered. */
export function ensureFakeBuiltins(): string[] {
  const added: string[] = [];
  for (const f of FAKES) {
    if (f.modules.some((m) => findBuiltin(m, f.exportName))) continue;
    registerBuiltin(f);
    added.push(f.exportName);
  }
  return added;
}
