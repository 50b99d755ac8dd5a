/**
 * The official MCP SDK client's own OAuth against the gateway's authorization server, end to
 * end: discovery → registration (DCR, then a URL client id served over https) → authorize →
 * IdP login → consent → token → initialize → tools/call through the MCP proxy.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError, type OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js";
import { TestBrowser } from "../fixtures/oauth-upstream.js";
import { trustClientMetadataCa } from "../../src/auth-server/index.js";
import { browserAuthorize, startAuthEnv, type AuthEnv } from "./auth-server-helpers.js";

/** An OAuthClientProvider whose "user agent" is the headless test browser. */
class BrowserDrivenProvider implements OAuthClientProvider {
  info: OAuthClientInformationMixed | undefined;
  saved: OAuthTokens | undefined;
  verifier = "";
  code: string | undefined;
  registered = 0;
  constructor(
    private readonly env: AuthEnv,
    private readonly browser: TestBrowser,
    readonly clientMetadataUrl?: string,
  ) {}
  get redirectUrl() {
    return this.env.redirectUri;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: "SDK Test Client",
      redirect_uris: [this.env.redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    return "sdk-state";
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.registered++;
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(t: OAuthTokens) {
    this.saved = t;
  }
  saveCodeVerifier(v: string) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(url: URL) {
    const { redirectedTo } = await browserAuthorize(this.env, this.browser, url.href);
    assert.equal(redirectedTo.searchParams.get("state"), "sdk-state");
    // The SDK discovered the route's own authorization server (issuer = the route URL) and used
    // its per-route authorization endpoint.
    const route = url.pathname.slice("/__tollgate/oauth/authorize".length);
    assert.ok(route === "/mcp/a" || route === "/mcp/b", url.pathname);
    assert.equal(redirectedTo.searchParams.get("iss"), `${this.env.gw.url}${route}`);
    this.code = redirectedTo.searchParams.get("code") ?? undefined;
  }
}

async function connectWithOAuth(env: AuthEnv, provider: BrowserDrivenProvider, url: string): Promise<Client> {
  const first = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  await assert.rejects(new Client({ name: "sdk-test", version: "1.0.0" }).connect(first), UnauthorizedError);
  assert.ok(provider.code, "the browser flow produced a code");
  await first.finishAuth(provider.code);
  await first.close();
  const client = new Client({ name: "sdk-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
  return client;
}

describe("MCP SDK client OAuth against the gateway", () => {
  let env: AuthEnv;
  before(async () => {
    env = await startAuthEnv({ settings: { allowedUpstreamHosts: ["localhost"] } });
  });
  after(async () => {
    await env.close();
  });

  test("DCR: discovery → register → IdP login → consent → token → tools/call", async () => {
    const provider = new BrowserDrivenProvider(env, new TestBrowser());
    const client = await connectWithOAuth(env, provider, env.routeA);
    try {
      assert.equal(provider.registered, 1);
      assert.match(String(provider.info?.client_id), /^tgc_/);
      assert.match(String(provider.saved?.access_token), /^tga_/);
      const out = await client.callTool({ name: "echo", arguments: { text: "through the gateway" } });
      assert.deepEqual(out.content, [{ type: "text", text: "through the gateway" }]);
      const seen = env.upstream.requests.filter((r) => r.body.includes("tools/call"));
      assert.ok(seen.length > 0);
      assert.ok(seen.every((r) => r.headers.authorization === undefined), "the client's token is not passed through");
    } finally {
      await client.close();
    }
  });

  test("URL client id (CIMD over https with a test CA) → tools/call", async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-cimd-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem"), "-days", "1",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ], { stdio: "ignore" });
    const cert = fs.readFileSync(path.join(dir, "cert.pem"), "utf8");
    let fetches = 0;
    let clientId = "";
    const server = https.createServer({ key: fs.readFileSync(path.join(dir, "key.pem")), cert }, (req, res) => {
      fetches++;
      if (req.url !== "/clients/sdk.json" && req.url !== "/clients/liar.json") return void res.writeHead(404).end();
      res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=600" }).end(
        JSON.stringify({
          client_id: clientId, // the liar document names the other URL
          client_name: "CIMD Test Client",
          redirect_uris: [env.redirectUri],
          grant_types: ["authorization_code", "refresh_token"],
          response_types: ["code"],
          token_endpoint_auth_method: "none",
        }),
      );
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    clientId = `https://localhost:${(server.address() as AddressInfo).port}/clients/sdk.json`;

    // Without trusting the test CA the document cannot be fetched: the authorization fails.
    const untrusted = await fetch(
      `${env.gw.url}/__tollgate/oauth/authorize?client_id=${encodeURIComponent(clientId)}&response_type=code`,
      { redirect: "manual" },
    );
    assert.equal(untrusted.status, 400);
    assert.equal(untrusted.headers.get("location"), null);

    trustClientMetadataCa(env.gw.services, cert);
    const provider = new BrowserDrivenProvider(env, new TestBrowser(), clientId);
    const client = await connectWithOAuth(env, provider, env.routeB);
    try {
      assert.equal(provider.info?.client_id, clientId, "the SDK used the URL client id, no registration");
      const out = await client.callTool({ name: "echo", arguments: { text: "cimd" } });
      assert.deepEqual(out.content, [{ type: "text", text: "cimd" }]);
      assert.equal(fetches, 1, "the metadata document is cached");
      // A document must name its own URL as client_id.
      const liar = clientId.replace("sdk.json", "liar.json");
      const refused = await fetch(
        `${env.gw.url}/__tollgate/oauth/authorize?client_id=${encodeURIComponent(liar)}&response_type=code&redirect_uri=${encodeURIComponent(env.redirectUri)}`,
        { redirect: "manual" },
      );
      assert.equal(refused.status, 400);
      assert.equal(refused.headers.get("location"), null);
    } finally {
      await client.close();
    }
  });

  test("URL client ids on non-allowed private addresses are refused without a redirect", async () => {
    const res = await fetch(
      `${env.gw.url}/__tollgate/oauth/authorize?client_id=${encodeURIComponent("https://127.0.0.1:1/x.json")}&response_type=code`,
      { redirect: "manual" },
    );
    assert.equal(res.status, 400);
    assert.equal(res.headers.get("location"), null);
    assert.ok(env.gw.logs.some((l) => l.includes("client metadata document refused") && l.includes("loopback address")));
  });
});
