/**
 * Attacks on the gateway's authorization server and browser layer: DNS rebinding against the
 * dev login, the authorization endpoint as an open redirector for self-registered clients, and
 * registration errors that echo what the caller sent.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { authorizeUrl, pkce, registerClient, startAuthEnv, type AuthEnv } from "./auth-server-helpers.js";

/** A raw request over a real socket to the gateway, with a chosen Host header. */
function rawRequest(
  gatewayUrl: string,
  path: string,
  opts: { host: string; method?: string; body?: string; headers?: Record<string, string> },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  const u = new URL(gatewayUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path,
        method: opts.method ?? "GET",
        headers: { host: opts.host, ...opts.headers },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

describe("authorization server and browser layer under attack", () => {
  let env: AuthEnv;
  before(async () => {
    env = await startAuthEnv({ devLogin: true });
  });
  after(async () => {
    await env.close();
  });

  test("dev login refuses a DNS-rebound Host (a foreign name pointing at loopback)", async () => {
    const port = new URL(env.gw.url).port;
    const path = "/__tollgate/login/dev";
    const local = await rawRequest(env.gw.url, path, { host: `127.0.0.1:${port}` });
    assert.equal(local.status, 200);
    const csrf = /name="csrf" value="([^"]+)"/.exec(local.text)![1]!;
    const nonceCookie = String(local.headers["set-cookie"]?.[0] ?? "").split(";")[0]!;

    const rebound = await rawRequest(env.gw.url, path, { host: `rebind.attacker.example:${port}` });
    assert.equal(rebound.status, 403);
    assert.equal(rebound.headers["set-cookie"], undefined);

    // The rebound page would be same-origin with the attacker's page, so it could read the
    // form nonce; the POST must be refused all the same.
    const post = await rawRequest(env.gw.url, path, {
      host: `rebind.attacker.example:${port}`,
      method: "POST",
      body: new URLSearchParams({ username: "alice", csrf }).toString(),
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        cookie: nonceCookie,
        origin: `http://rebind.attacker.example:${port}`,
      },
    });
    assert.equal(post.status, 403);
    assert.ok(!(post.headers["set-cookie"] ?? []).some((c) => c.startsWith("tollgate_session=")), "no session for a rebound host");
  });

  test("dev login refuses requests that came through a local proxy, whichever forwarding header it adds", async () => {
    const url = `${env.gw.url}/__tollgate/login/dev`;
    for (const [name, value] of [
      ["x-real-ip", "203.0.113.7"],
      ["via", "1.1 nginx"],
      ["x-forwarded-host", "gw.example.com"],
      ["x-forwarded-proto", "https"],
      ["cf-connecting-ip", "203.0.113.7"],
      ["true-client-ip", "203.0.113.7"],
    ] as const) {
      const res = await fetch(url, { headers: { [name]: value } });
      assert.equal(res.status, 403, name);
      await res.text();
    }
    assert.equal((await fetch(url)).status, 200);
  });

  test("authorize: errors for a self-registered client with a web redirect URI are shown, never redirected", async () => {
    // A scheme handler can open a web page too (microsoft-edge:https://…), so it is no safer.
    for (const phishing of ["https://phish.attacker.example/cb", "microsoft-edge:https://phish.attacker.example/cb"]) {
      const reg = await registerClient(env, { redirect_uris: [phishing] });
      assert.equal(reg.status, 201);
      const clientId = String(reg.json.client_id);
      const cases: Array<Record<string, string | undefined>> = [
        { code_challenge: pkce().challenge, scope: "not-a-scope" },
        { code_challenge: undefined },
        { code_challenge: pkce().challenge, prompt: "none" },
        { code_challenge: pkce().challenge, resource: "https://elsewhere.example/mcp" },
      ];
      for (const params of cases) {
        const res = await fetch(authorizeUrl(env, { client_id: clientId, redirect_uri: phishing, ...params }), { redirect: "manual" });
        assert.equal(res.headers.get("location"), null, `${phishing} ${JSON.stringify(params)}`);
        assert.equal(res.status, 400, JSON.stringify(params));
        assert.match(await res.text(), /Authorization request refused/);
      }
    }
    // A loopback redirect URI cannot lead to a phishing site: errors still go back to the client.
    const loopbackClient = String((await registerClient(env)).json.client_id);
    const back = await fetch(authorizeUrl(env, { client_id: loopbackClient, code_challenge: pkce().challenge, scope: "not-a-scope" }), {
      redirect: "manual",
    });
    assert.equal(back.status, 303);
    assert.equal(new URL(back.headers.get("location")!).searchParams.get("error"), "invalid_scope");
  });

  test("registration errors do not echo what the caller sent", async () => {
    const marker = "Visit-https://evil.example-to-fix-this";
    const r = await registerClient(env, { scope: `mcp ${marker}` });
    assert.equal(r.status, 400);
    assert.equal(r.json.error, "invalid_client_metadata");
    assert.doesNotMatch(String(r.json.error_description), /evil\.example/);
  });
});
