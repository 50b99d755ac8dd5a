/**
 * The setup page in a real browser (Debian chromium through playwright-core): an MCP client's
 * authorization lands on it after the dev login; the route's upstream (the demo notes server, a
 * real oidc-provider) is not connected, so its Connect button leads and Approve is disabled —
 * and refused by the gateway if sent anyway. Connect → the upstream's sign-in → back on the
 * setup page, now connected → Approve → the client's redirect URI with a code. The page shows
 * who is signed in, with sign-out.
 *
 * Screenshots `setup-page-before.png` and `setup-page-after.png` go to
 * `$TOLLGATE_SCREENSHOT_DIR` (run with `TOLLGATE_SCREENSHOT_DIR=docs` to refresh the ones in
 * the docs) or the temp folder, so a test run leaves the working tree untouched.
 *
 * Needs `/usr/bin/chromium`; skipped without it unless CI=true.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Browser } from "playwright-core";
import { chromiumSkip, launchChromium } from "../helpers/chromium.js";
import type { OAuthUpstream } from "../fixtures/oauth-upstream.js";
import type { RunningGateway } from "../helpers/harness.js";
import { startSetupPageEnv } from "./upstream-oauth-kit.js";

const SHOTS = path.resolve(process.env.TOLLGATE_SCREENSHOT_DIR ?? os.tmpdir());

describe("setup page in a real browser", { skip: chromiumSkip }, () => {
  let env: Awaited<ReturnType<typeof startSetupPageEnv>>;
  let gw: RunningGateway;
  let upstream: OAuthUpstream;
  let browser: Browser;
  let redirectUri: string;

  before(async () => {
    env = await startSetupPageEnv({ title: "setup page", plugin: true });
    ({ gw, upstream, redirectUri } = env);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await env?.close();
  });

  test("connect the upstream from the setup page, then approve", async () => {
    const authorize = await env.authorization("Claude Desktop (test)", { state: "st-1", scope: "mcp:tools" });
    const page = await browser.newPage({ viewport: { width: 760, height: 900 } });
    const csp: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) csp.push(m.text());
    });
    await page.goto(authorize.url);
    // The dev login (loopback only): the suggested user name is replaced with alice.
    await page.waitForURL(/\/__zuplo\/oauth\/dev-login\?/);
    await page.fill("#username", "alice");
    await page.click('button[type="submit"]');
    await page.waitForURL(/\/__zuplo\/oauth\/setup\?req=/);
    const setupUrl = page.url();

    // Before: connecting is the step; Approve is disabled and says why.
    assert.match(await page.locator("h1").innerText(), /Connect your accounts for Claude Desktop \(test\)/);
    assert.match(await page.locator("header.account").innerText(), /Signed in as alice/);
    assert.equal(await page.locator("header.account button", { hasText: "Sign out" }).count(), 1);
    const row = page.locator('li[data-upstream="notes"]');
    assert.equal(await row.getAttribute("data-state"), "not-connected");
    const connect = row.locator("a.button.big", { hasText: "Connect Demo Notes" });
    assert.equal(await connect.count(), 1);
    const approve = page.locator('button[name="decision"][value="approve"]');
    assert.equal(await approve.isDisabled(), true);
    assert.match(await page.locator("#approve-help").innerText(), /once Demo Notes is connected/);
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, "setup-page-before.png"), fullPage: true });

    // Approve sent anyway (the disabled attribute removed) is refused by the gateway.
    await approve.evaluate((b) => b.removeAttribute("disabled"));
    await approve.click();
    await page.waitForLoadState();
    assert.match(await page.locator('[role="alert"]').innerText(), /Connect Demo Notes before approving/);
    assert.equal(await page.locator('li[data-upstream="notes"]').getAttribute("data-state"), "not-connected");

    // Connect: the upstream's sign-in page, then straight back to the setup page.
    await page.locator("a.button.big", { hasText: "Connect Demo Notes" }).click();
    await page.waitForURL((u) => u.origin === new URL(upstream.origin).origin);
    await page.fill('input[name="username"]', "alice-notes");
    await page.click('button[type="submit"]');
    await page.waitForURL((u) => u.href === setupUrl);

    // After: connected, Approve enabled.
    assert.equal(await page.locator('li[data-upstream="notes"]').getAttribute("data-state"), "connected");
    assert.match(await page.locator("h1").innerText(), /Allow Claude Desktop \(test\)\?/);
    assert.equal(await page.locator('button[name="decision"][value="approve"]').isDisabled(), false);
    await page.screenshot({ path: path.join(SHOTS, "setup-page-after.png"), fullPage: true });

    const landed = page.waitForURL((u) => u.href.startsWith(redirectUri));
    await page.click('button[name="decision"][value="approve"]');
    await landed;
    const url = new URL(page.url());
    assert.ok(url.searchParams.get("code"));
    assert.equal(url.searchParams.get("state"), "st-1");
    assert.equal(url.searchParams.get("iss"), `${gw.url}/mcp/notes`);
    assert.deepEqual(csp, [], "no CSP violations");
    await page.close();
  });
});
