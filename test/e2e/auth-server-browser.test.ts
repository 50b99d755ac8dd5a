/**
 * A real browser (Debian chromium through playwright-core) clicks through the authorization:
 * gateway authorize → IdP sign-in form → consent page (with the route's upstream and its
 * Connect button) → Approve → the client's redirect URI with a code. The consent page's CSP
 * must let the form's redirect to the client through. The page is saved as `consent.png` in
 * `$TOLLGATE_SCREENSHOT_DIR` (run with `TOLLGATE_SCREENSHOT_DIR=docs` to refresh the one in the
 * docs) or the temp folder, so a test run leaves the working tree untouched.
 *
 * Needs `/usr/bin/chromium` (`apt-get install -y chromium`); skipped without it unless CI=true.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Browser } from "playwright-core";
import { chromiumSkip, launchChromium } from "../helpers/chromium.js";
import { authorizeUrl, pkce, registerClient, startAuthEnv, tokenRequest, type AuthEnv } from "./auth-server-helpers.js";

const skip = chromiumSkip;
const SHOTS = path.resolve(process.env.TOLLGATE_SCREENSHOT_DIR ?? os.tmpdir());

describe("consent in a real browser", { skip }, () => {
  let env: AuthEnv;
  let browser: Browser;
  before(async () => {
    env = await startAuthEnv({
      extraPolicies: [
        {
          name: "mcp-token-exchange-linear",
          policyType: "mcp-token-exchange-inbound",
          handler: {
            module: "$import(@zuplo/runtime/mcp-gateway)",
            export: "McpTokenExchangeInboundPolicy",
            options: { displayName: "Linear", authMode: "user-oauth", clientRegistration: { mode: "auto" } },
          },
        },
      ],
      routeAExtraInbound: ["mcp-token-exchange-linear"],
    });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await env?.close();
  });

  test("IdP sign-in, consent with Connect, approve → code at the client", async () => {
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
    // The gateway's consent page.
    await page.waitForURL(/\/__tollgate\/oauth\/consent\?req=/);
    assert.match(await page.locator("h1").innerText(), /Allow Claude Desktop \(test\) to use route-a\?/);
    assert.match(await page.locator(".host").first().innerText(), /^127\.0\.0\.1:\d+$/);
    assert.match(await page.locator("body").innerText(), /alice@example\.com/);
    const connect = page.locator("a.button", { hasText: "Connect" });
    assert.equal(await connect.count(), 1);
    assert.match(await page.locator("ul.list li").first().innerText(), /Linear/);
    // A connect link with a ticket for alice and this route, as connect-required answers carry.
    assert.ok((await connect.getAttribute("href"))?.startsWith(`${env.gw.url}/__tollgate/connections/linear/connect?ticket=`));
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, "consent.png"), fullPage: true });
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

  test("the consent page cannot be framed", async () => {
    const res = await fetch(`${env.gw.url}/__tollgate/oauth/consent?req=${"x".repeat(32)}`);
    assert.match(res.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
    assert.equal(res.headers.get("x-frame-options"), "DENY");
  });
});
