import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, test } from "node:test";
import {
  asMetadataCandidates,
  discoverUpstream,
  prmCandidates,
  resourceMatches,
  wellKnownPrmUrl,
} from "./discovery.js";
import { createGuardedFetch } from "./ssrf.js";

test("derives the PRM URL by path insertion", () => {
  assert.equal(wellKnownPrmUrl(new URL("https://mcp.linear.app/mcp")), "https://mcp.linear.app/.well-known/oauth-protected-resource/mcp");
  assert.equal(wellKnownPrmUrl(new URL("https://h/a/b/")), "https://h/.well-known/oauth-protected-resource/a/b");
  assert.equal(wellKnownPrmUrl(new URL("https://h/")), "https://h/.well-known/oauth-protected-resource");
  assert.equal(wellKnownPrmUrl(new URL("https://h/mcp"), true), "https://h/.well-known/oauth-protected-resource");
});

test("PRM candidates: override alone; else challenge, path-inserted, root", () => {
  const u = new URL("https://h/mcp");
  assert.deepEqual(prmCandidates(u, "https://h/custom.json", "https://h/x"), ["https://h/custom.json"]);
  assert.deepEqual(prmCandidates(u, undefined, "https://h/x"), [
    "https://h/x",
    "https://h/.well-known/oauth-protected-resource/mcp",
    "https://h/.well-known/oauth-protected-resource",
  ]);
  assert.deepEqual(prmCandidates(new URL("https://h/"), undefined, undefined), ["https://h/.well-known/oauth-protected-resource"]);
});

test("AS metadata candidates follow the MCP order", () => {
  assert.deepEqual(asMetadataCandidates(new URL("https://as/t1")), [
    "https://as/.well-known/oauth-authorization-server/t1",
    "https://as/.well-known/openid-configuration/t1",
    "https://as/t1/.well-known/openid-configuration",
  ]);
  assert.deepEqual(asMetadataCandidates(new URL("https://as/")), [
    "https://as/.well-known/oauth-authorization-server",
    "https://as/.well-known/openid-configuration",
  ]);
});

test("resource matching: same origin and a covering path", () => {
  const up = new URL("https://h/mcp");
  assert.ok(resourceMatches("https://h/mcp", up));
  assert.ok(resourceMatches("https://h", up));
  assert.ok(resourceMatches("https://h/", up));
  assert.ok(!resourceMatches("https://h/other", up));
  assert.ok(!resourceMatches("https://h/mc", up));
  assert.ok(!resourceMatches("https://evil/mcp", up));
  assert.ok(!resourceMatches("not a url", up));
});

// A configurable fake upstream + AS on one loopback origin.
type Route = (req: http.IncomingMessage) => { status: number; body?: unknown; headers?: Record<string, string> } | undefined;
let routes: Record<string, Route> = {};
const seen: string[] = [];
let server: http.Server;
let origin: string;
const fetch = createGuardedFetch({ allowPrivate: true, allowedHosts: [] });

before(async () => {
  server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    seen.push(`${req.method} ${path}`);
    const out = routes[path]?.(req);
    if (!out) return void res.writeHead(404).end("not found");
    res.writeHead(out.status, { "content-type": "application/json", ...out.headers });
    res.end(out.body === undefined ? "" : JSON.stringify(out.body));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await fetch.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  routes = {};
  seen.length = 0;
});

const json = (body: unknown) => () => ({ status: 200, body });
const asMeta = (issuer: string, extra: Record<string, unknown> = {}) => ({
  issuer,
  authorization_endpoint: `${issuer}/authorize`,
  token_endpoint: `${issuer}/token`,
  response_types_supported: ["code"],
  code_challenge_methods_supported: ["S256"],
  ...extra,
});

test("PRM at the path-inserted URL, AS metadata at the root", async () => {
  routes["/.well-known/oauth-protected-resource/mcp"] = json({ resource: `${origin}/mcp`, authorization_servers: [origin], scopes_supported: ["a"] });
  routes["/.well-known/oauth-authorization-server"] = json(asMeta(origin));
  const d = await discoverUpstream(fetch, new URL(`${origin}/mcp`));
  assert.equal(d.resource, `${origin}/mcp`);
  assert.equal(d.as.issuer, origin);
  assert.deepEqual(d.scopesSupported, ["a"]);
  assert.deepEqual(seen, ["GET /.well-known/oauth-protected-resource/mcp", "GET /.well-known/oauth-authorization-server"]);
});

test("PRM only at the origin root; issuer with a path found at its third location", async () => {
  routes["/.well-known/oauth-protected-resource"] = json({ resource: origin, authorization_servers: [`${origin}/t1`] });
  routes["/t1/.well-known/openid-configuration"] = json(asMeta(`${origin}/t1`));
  const d = await discoverUpstream(fetch, new URL(`${origin}/mcp`));
  assert.equal(d.resource, origin);
  assert.equal(d.as.issuer, `${origin}/t1`);
  assert.deepEqual(seen, [
    "GET /.well-known/oauth-protected-resource/mcp",
    "GET /.well-known/oauth-protected-resource",
    "GET /.well-known/oauth-authorization-server/t1",
    "GET /.well-known/openid-configuration/t1",
    "GET /t1/.well-known/openid-configuration",
  ]);
});

test("the configured PRM URL is the only one tried", async () => {
  routes["/custom/prm.json"] = json({ resource: `${origin}/mcp`, authorization_servers: [origin] });
  routes["/.well-known/openid-configuration"] = json(asMeta(origin));
  const d = await discoverUpstream(fetch, new URL(`${origin}/mcp`), { prmOverride: `${origin}/custom/prm.json` });
  assert.equal(d.prmUrl, `${origin}/custom/prm.json`);
  assert.deepEqual(seen, ["GET /custom/prm.json", "GET /.well-known/oauth-authorization-server", "GET /.well-known/openid-configuration"]);
  routes = {};
  await assert.rejects(discoverUpstream(fetch, new URL(`${origin}/mcp`), { prmOverride: `${origin}/custom/prm.json` }), {
    code: "upstream_discovery_failed",
  });
});

test("PRM named only by the upstream's 401 challenge is found by a probe", async () => {
  routes["/mcp"] = () => ({
    status: 401,
    headers: { "www-authenticate": `Bearer resource_metadata="${origin}/meta/prm", scope="notes:read"` },
  });
  routes["/meta/prm"] = json({ resource: `${origin}/mcp`, authorization_servers: [origin] });
  routes["/.well-known/oauth-authorization-server"] = json(asMeta(origin));
  let challenge: string | undefined;
  const d = await discoverUpstream(fetch, new URL(`${origin}/mcp`), { onChallenge: (h) => void (challenge = h) });
  assert.equal(d.prmUrl, `${origin}/meta/prm`);
  assert.match(challenge ?? "", /notes:read/);
  assert.ok(seen.includes("POST /mcp"));
});

test("refuses an authorization server without PKCE S256, or one that names another issuer", async () => {
  routes["/.well-known/oauth-protected-resource/mcp"] = json({ resource: `${origin}/mcp`, authorization_servers: [origin] });
  routes["/.well-known/oauth-authorization-server"] = json(asMeta(origin, { code_challenge_methods_supported: ["plain"] }));
  await assert.rejects(discoverUpstream(fetch, new URL(`${origin}/mcp`)), { code: "upstream_pkce_unsupported" });
  routes["/.well-known/oauth-authorization-server"] = json(asMeta("https://elsewhere.example"));
  await assert.rejects(discoverUpstream(fetch, new URL(`${origin}/mcp`)), { code: "upstream_discovery_failed" });
});

test("refuses PRM whose resource does not cover the upstream", async () => {
  routes["/.well-known/oauth-protected-resource/mcp"] = json({ resource: "https://other.example/mcp", authorization_servers: [origin] });
  await assert.rejects(discoverUpstream(fetch, new URL(`${origin}/mcp`)), { code: "upstream_resource_mismatch" });
});

test("without any PRM the upstream's origin is taken as the authorization server", async () => {
  routes["/.well-known/oauth-authorization-server"] = json(asMeta(origin));
  const d = await discoverUpstream(fetch, new URL(`${origin}/mcp?x=1`));
  assert.equal(d.prmUrl, undefined);
  assert.equal(d.resource, `${origin}/mcp`);
  assert.equal(d.as.issuer, origin);
});
