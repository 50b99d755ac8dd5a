/**
 * A real browser (Debian chromium through playwright-core) clicks through the authorization
 * with an IdP: gateway authorize → IdP sign-in form → setup page → Approve → the client's
 * redirect URI with a code. The setup page's CSP must let the form's redirect to the client
 * through. (Connecting upstreams on the setup page: `setup-page-browser.test.ts`.)
 *
 * Needs `/usr/bin/chromium` (`apt-get install -y chromium`); skipped without it unless CI=true.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { chromiumSkip, launchChromium } from "../helpers/chromium.js";
import { authorizeUrl, pkce, registerClient, startAuthEnv, tokenRequest, type AuthEnv } from "./auth-server-helpers.js";

const skip = chromiumSkip;

describe("setup page after an IdP sign-in, in a real browser", { skip }, () => {
  let env: AuthEnv;
  let browser: Browser;
  before(async () => {
    env = await startAuthEnv();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await env?.close();
  });

  test("IdP sign-in, setup page, approve → code at the client", async () => {
    const clientId = String((await registerClient(env, { client_name: "Claude Desktop (test)" })).json.client_id);
    const { verifier, challenge } = pkce();
    const page = await browser.newPage({ viewport: { width: 760, height: 900 } });
    const csp: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) csp.push(m.text());
    });
    await page.goto(authorizeUrl(env, { client_id: clientId, code_challenge: challenge }));
    // The IdP's sign-in form.
    await page.fill("#idp-username", "alice");
    await page.fill("#idp-password", "alice-pw");
    await page.click("#idp-submit");
    // The gateway's setup page (the route has no per-user upstream: Approve is the only step).
    await page.waitForURL(/\/__tollgate\/oauth\/setup\?req=/);
    assert.match(await page.locator("h1").innerText(), /Allow Claude Desktop \(test\)\?/);
    assert.match(await page.locator("main").innerText(), /asks to use route-a as you/);
    assert.match(await page.locator(".host").first().innerText(), /^127\.0\.0\.1:\d+$/);
    assert.match(await page.locator("header.account").innerText(), /Signed in as alice@example\.com/);
    // Approve: the form posts to the gateway, which redirects to the client's loopback URI.
    const landed = page.waitForURL((u) => u.href.startsWith(env.redirectUri));
    await page.click('button[name="decision"][value="approve"]');
    await landed;
    const url = new URL(page.url());
    assert.equal(url.searchParams.get("iss"), env.gw.url);
    assert.equal(url.searchParams.get("state"), "st-123");
    const code = url.searchParams.get("code");
    assert.ok(code);
    assert.deepEqual(csp, [], "no CSP violations");
    const t = await tokenRequest(env, {
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      client_id: clientId,
      redirect_uri: env.redirectUri,
    });
    assert.equal(t.status, 200);
    assert.match(String(t.json.access_token), /^tga_/);
    await page.close();
  });

  test("the setup page (and its earlier path) cannot be framed", async () => {
    for (const path of ["setup", "consent"]) {
      const res = await fetch(`${env.gw.url}/__tollgate/oauth/${path}?req=${"x".repeat(32)}`);
      assert.match(res.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
      assert.equal(res.headers.get("x-frame-options"), "DENY");
    }
  });
});
