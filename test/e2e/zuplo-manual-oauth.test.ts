/**
 * Zuplo's "manual OAuth testing" walkthrough, step by step with plain HTTP at the documented
 * paths, against a project that registers McpGatewayPlugin (base path `/__zuplo`) and signs
 * browsers in with the loopback dev login: discovery (401 challenge) → protected resource
 * metadata → authorization server metadata → DCR with `mcp:tools` → authorize with PKCE → dev
 * login → setup page → approve → token → MCP `initialize` → refresh → revoke → 401.
 *
 * The browser's part is plain `fetch` too, carrying its cookies by hand.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { startGateway, writeProject, type RunningGateway } from "../helpers/harness.js";
import { mcpInitialize } from "./auth-server-helpers.js";

const MCP = "$import(@zuplo/runtime/mcp-gateway)";
const REDIRECT_URI = "http://localhost:8765/callback";
let upstream: McpTestServer;
let gw: RunningGateway;

before(async () => {
  upstream = await startMcpTestServer({ mode: "stateful" });
  const dir = await writeProject({
    "modules/zuplo.runtime.ts":
      `import { RuntimeExtensions } from "@zuplo/runtime";\nimport { McpGatewayPlugin } from "@zuplo/runtime/mcp-gateway";\n\n` +
      `export function runtimeInit(runtime: RuntimeExtensions) {\n  runtime.addPlugin(new McpGatewayPlugin());\n}\n`,
    "config/policies.json": JSON.stringify({
      policies: [{ name: "mcp-oauth", policyType: "mcp-oauth-inbound", handler: { module: MCP, export: "McpOAuthInboundPolicy", options: {} } }],
    }),
    "config/routes.oas.json": JSON.stringify({
      openapi: "3.1.0",
      info: { title: "manual", version: "1" },
      paths: {
        "/mcp/linear-v1": {
          "get,post": {
            operationId: "linear-mcp-server",
            "x-zuplo-route": {
              corsPolicy: "none",
              handler: { module: MCP, export: "McpProxyHandler", options: { rewritePattern: upstream.url } },
              policies: { inbound: ["mcp-oauth"] },
            },
          },
        },
      },
    }),
  });
  gw = await startGateway({ projectDir: dir, settings: { devLogin: true } });
});
after(async () => {
  await gw?.close();
  await upstream?.close();
});

/** A browser's cookie jar, by hand. */
class Jar {
  private readonly cookies = new Map<string, string>();
  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq);
      if (/Max-Age=0/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, pair!.slice(eq + 1));
    }
  }
  get header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
}

const form = (fields: Record<string, string>) => ({ "content-type": "application/x-www-form-urlencoded", body: new URLSearchParams(fields) });
const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];

test("the manual OAuth walkthrough at the documented paths", async () => {
  const GATEWAY = gw.url;
  const SLUG = "linear-v1";
  const MCP_URL = `${GATEWAY}/mcp/${SLUG}`;

  // 1. Discovery: an unauthenticated MCP request is refused with the PRM location.
  const challenge = await mcpInitialize(MCP_URL, undefined);
  assert.equal(challenge.status, 401);
  const www = challenge.headers.get("www-authenticate") ?? "";
  const prmUrl = /resource_metadata="([^"]+)"/.exec(www)?.[1];
  assert.equal(prmUrl, `${GATEWAY}/.well-known/oauth-protected-resource/mcp/${SLUG}`);

  // 2. Protected resource metadata (RFC 9728).
  const prmRes = await fetch(prmUrl!);
  assert.equal(prmRes.headers.get("access-control-allow-origin"), "*");
  const prm = (await prmRes.json()) as Record<string, unknown>;
  assert.equal(prm.resource, MCP_URL);
  assert.deepEqual(prm.authorization_servers, [MCP_URL]);
  assert.deepEqual(prm.bearer_methods_supported, ["header"]);
  assert.deepEqual(prm.scopes_supported, ["mcp:tools"]);
  assert.equal(prm.mcp_protocol_version, "2025-11-25");
  assert.equal(typeof prm.resource_name, "string");

  // 3. Authorization server metadata (RFC 8414) for the route's issuer.
  const asMeta = (await (await fetch(`${GATEWAY}/.well-known/oauth-authorization-server/mcp/${SLUG}`)).json()) as Record<string, unknown>;
  assert.equal(asMeta.issuer, MCP_URL);
  assert.equal(asMeta.authorization_endpoint, `${GATEWAY}/__zuplo/oauth/authorize/mcp/${SLUG}`);
  assert.equal(asMeta.token_endpoint, `${GATEWAY}/__zuplo/oauth/token`);
  assert.equal(asMeta.registration_endpoint, `${GATEWAY}/__zuplo/oauth/register`);
  assert.equal(asMeta.revocation_endpoint, `${GATEWAY}/__zuplo/oauth/revoke`);
  assert.deepEqual(asMeta.scopes_supported, ["mcp:tools"]);
  assert.deepEqual(asMeta.code_challenge_methods_supported, ["S256"]);
  assert.deepEqual(asMeta.response_types_supported, ["code"]);
  assert.deepEqual(asMeta.grant_types_supported, ["authorization_code", "refresh_token"]);
  assert.equal(asMeta["x-zuplo-browser-login-kind"], "local_dev");
  const root = (await (await fetch(`${GATEWAY}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
  assert.equal(root.issuer, GATEWAY);

  // 4. Dynamic client registration with the mcp:tools scope; another scope is refused.
  const refused = await fetch(String(asMeta.registration_endpoint), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_name: "manual", redirect_uris: [REDIRECT_URI], scope: "admin" }),
  });
  assert.equal(refused.status, 400);
  assert.equal(((await refused.json()) as { error: string }).error, "invalid_client_metadata");
  const metadata = {
    client_name: "Manual OAuth test",
    redirect_uris: [REDIRECT_URI],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "none",
    scope: "mcp:tools",
  };
  const reg = await fetch(String(asMeta.registration_endpoint), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(metadata) });
  assert.equal(reg.status, 201);
  const client = (await reg.json()) as Record<string, unknown>;
  for (const [k, v] of Object.entries(metadata)) assert.deepEqual(client[k], v, `registration echoes ${k}`);
  assert.equal(typeof client.client_id, "string");
  assert.equal(typeof client.client_id_issued_at, "number");
  assert.equal(client.client_id_metadata_document_supported, true);
  const CLIENT_ID = String(client.client_id);

  // 5. Authorize with PKCE (S256), in the browser: dev login, then the setup page.
  const verifier = randomBytes(32).toString("base64url");
  const authorize = new URL(String(asMeta.authorization_endpoint));
  for (const [k, v] of Object.entries({
    response_type: "code",
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    scope: "mcp:tools",
    state: "xyz",
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
  })) {
    authorize.searchParams.set(k, v);
  }
  const jar = new Jar();
  const browse = async (url: string, init: { method?: string; "content-type"?: string; body?: URLSearchParams } = {}) => {
    const headers: Record<string, string> = { cookie: jar.header };
    if (init["content-type"]) headers["content-type"] = init["content-type"];
    const res = await fetch(new URL(url, GATEWAY), { method: init.method ?? "GET", headers, redirect: "manual", ...(init.body ? { body: init.body } : {}) });
    jar.take(res);
    return res;
  };
  let res = await browse(authorize.href);
  assert.equal(res.status, 302, "to sign-in");
  res = await browse(res.headers.get("location")!);
  assert.equal(res.status, 302);
  const devLogin = new URL(res.headers.get("location")!, GATEWAY);
  assert.equal(devLogin.pathname, "/__zuplo/oauth/dev-login");
  res = await browse(devLogin.href);
  assert.equal(res.status, 200);
  const loginPage = await res.text();
  assert.match(loginPage, /value="dev-browser-user"/, "the dev login suggests Zuplo's dev user");
  res = await browse("/__zuplo/oauth/dev-login", {
    method: "POST",
    ...form({ username: "dev-browser-user", return_to: hidden(loginPage, "return_to")!.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))), csrf: hidden(loginPage, "csrf")! }),
  });
  assert.equal(res.status, 303);
  const setup = new URL(res.headers.get("location")!, GATEWAY);
  assert.equal(setup.pathname, "/__zuplo/oauth/setup");
  res = await browse(setup.href);
  assert.equal(res.status, 200);
  const setupPage = await res.text();
  assert.match(setupPage, /Signed in as <strong>dev-browser-user<\/strong>/);
  const fields = { req: hidden(setupPage, "req")!, csrf: hidden(setupPage, "csrf")! };
  res = await browse("/__zuplo/oauth/setup", { method: "POST", ...form({ ...fields, decision: "continue" }) });
  assert.equal(res.status, 303, "continue: back to the setup page");
  assert.equal(new URL(res.headers.get("location")!, GATEWAY).href, setup.href);
  res = await browse("/__zuplo/oauth/setup", { method: "POST", ...form({ ...fields, decision: "approve" }) });
  assert.equal(res.status, 303);
  const back = new URL(res.headers.get("location")!);
  assert.equal(`${back.origin}${back.pathname}`, REDIRECT_URI);
  assert.equal(back.searchParams.get("state"), "xyz");
  assert.equal(back.searchParams.get("iss"), MCP_URL);
  const CODE = back.searchParams.get("code")!;
  assert.ok(CODE);

  // 6. Token.
  const token = async (fields: Record<string, string>) => {
    const r = await fetch(String(asMeta.token_endpoint), { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields) });
    return { status: r.status, json: (await r.json()) as Record<string, unknown> };
  };
  const t = await token({ grant_type: "authorization_code", code: CODE, redirect_uri: REDIRECT_URI, client_id: CLIENT_ID, code_verifier: verifier, resource: MCP_URL });
  assert.equal(t.status, 200, JSON.stringify(t.json));
  assert.equal(t.json.token_type, "Bearer");
  assert.equal(t.json.scope, "mcp:tools");
  assert.equal(t.json.resource, MCP_URL);
  assert.equal(t.json.expires_in, 900);
  assert.ok(t.json.access_token && t.json.refresh_token);

  // 7. An MCP request with the token.
  const init = await mcpInitialize(MCP_URL, String(t.json.access_token));
  assert.equal(init.status, 200);
  await init.body?.cancel();
  assert.equal(upstream.requests.at(-1)?.headers.authorization, undefined, "the gateway's token never goes upstream");

  // 8. Refresh (rotates).
  const r = await token({ grant_type: "refresh_token", refresh_token: String(t.json.refresh_token), client_id: CLIENT_ID });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.resource, MCP_URL);
  assert.equal(r.json.scope, "mcp:tools");
  assert.notEqual(r.json.refresh_token, t.json.refresh_token);
  const init2 = await mcpInitialize(MCP_URL, String(r.json.access_token));
  assert.equal(init2.status, 200);
  await init2.body?.cancel();

  // 9. Revoke the refresh token (public client: client_id in the form): 200, empty body; also unknown tokens.
  for (const tok of [String(r.json.refresh_token), "rt_unknown"]) {
    const rev: Response = await fetch(String(asMeta.revocation_endpoint), { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ token: tok, client_id: CLIENT_ID }) });
    assert.equal(rev.status, 200);
    assert.equal(await rev.text(), "");
  }

  // 10. The grant is gone: its access token is refused.
  const revoked = await mcpInitialize(MCP_URL, String(r.json.access_token));
  assert.equal(revoked.status, 401);
  assert.match(revoked.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
  await revoked.body?.cancel();
});

test("authorize without the route suffix: resource optional with one MCP route; the origin is the issuer", async () => {
  const reg = (await (
    await fetch(`${gw.url}/__zuplo/oauth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none" }),
    })
  ).json()) as { client_id: string; scope: string };
  assert.equal(reg.scope, "mcp:tools", "the registered scope defaults to what the gateway offers");
  const u = new URL(`${gw.url}/__zuplo/oauth/authorize`);
  for (const [k, v] of Object.entries({ response_type: "code", client_id: reg.client_id, redirect_uri: REDIRECT_URI, code_challenge: "a".repeat(43), code_challenge_method: "S256" })) u.searchParams.set(k, v);
  const res = await fetch(u, { redirect: "manual" });
  assert.equal(res.status, 302, "accepted without resource: on to sign-in");
  assert.match(res.headers.get("location")!, /^\/__zuplo\/login\?return_to=%2F__zuplo%2Foauth%2Fsetup/);
  // A resource the endpoint's route does not serve is refused back to the (loopback) client.
  const wrong = new URL(`${gw.url}/__zuplo/oauth/authorize/mcp/linear-v1`);
  u.searchParams.forEach((v, k) => wrong.searchParams.set(k, v));
  wrong.searchParams.set("resource", `${gw.url}/mcp/other`);
  const refused = await fetch(wrong, { redirect: "manual" });
  assert.equal(refused.status, 303);
  const to = new URL(refused.headers.get("location")!);
  assert.equal(to.searchParams.get("error"), "invalid_target");
  assert.equal(to.searchParams.get("iss"), `${gw.url}/mcp/linear-v1`);
});

test("dev login is loopback-only: a proxied request gets 403", async () => {
  const res = await fetch(`${gw.url}/__zuplo/oauth/dev-login`, { headers: { "x-forwarded-for": "203.0.113.9" } });
  assert.equal(res.status, 403);
  await res.body?.cancel();
});
