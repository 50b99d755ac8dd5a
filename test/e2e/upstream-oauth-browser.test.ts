/**
 * The whole connect flow in a real browser (Playwright driving Debian's chromium): the MCP
 * client's connect-required link → dev login → (the signed-in user is the link's) the upstream's
 * login → the callback's success page. A real browser also enforces the pages' CSP and cookie
 * rules the test browser does not.
 *
 * Skipped when chromium (`$CHROMIUM_PATH`, default /usr/bin/chromium) is missing, unless CI=true (then it fails).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser } from "playwright-core";
import { chromiumSkip, launchChromium } from "../helpers/chromium.js";
import { expectConnectRequired, sdkClient, startIdentity, startScenario, whoami, type Identity, type Scenario } from "./upstream-oauth-kit.js";

const skip = chromiumSkip;

let identity: Identity;
let s: Scenario;
let browser: Browser;

before(async () => {
  if (skip) return;
  identity = await startIdentity();
  s = await startScenario(identity, {});
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await s?.close();
  await identity?.close();
});

test("connect an upstream in chromium, then use it from the MCP client", { skip }, async () => {
  const token = await identity.token("alice");
  const first = sdkClient(s.gw.url, token);
  const authUrl = await expectConnectRequired(() => first.firstUse());
  await first.close();

  const context = await browser.newContext();
  const page = await context.newPage();
  const violations: string[] = [];
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  try {
    await page.goto(authUrl);
    // Dev login (loopback only).
    await page.fill("#username", "alice");
    // Signed in as the link's user: the connect link goes straight to the upstream's sign-in.
    await Promise.all([page.waitForURL((u) => u.origin === s.upstream.origin), page.click("button[type=submit]")]);
    await page.fill("input[name=username]", "alice");
    await Promise.all([page.waitForURL(/\/auth\/connections\/notes\/callback\?/), page.click("button[type=submit]")]);
    assert.match(await page.textContent("h1") ?? "", /Demo Notes is connected/);
    assert.deepEqual(violations, []);
    const cookies = await context.cookies(s.gw.url);
    const session = cookies.find((c) => c.name === "tollgate_session");
    assert.ok(session?.httpOnly, "session cookie is HttpOnly");
  } finally {
    await context.close();
  }

  const c = sdkClient(s.gw.url, token);
  await c.connect();
  assert.equal(await whoami(c.client), "alice");
  await c.close();
});
