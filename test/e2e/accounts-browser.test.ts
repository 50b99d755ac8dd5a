/**
 * Two gateway users in one browser (Playwright driving Debian's chromium, the real demo
 * upstream on oidc-provider): alice connects Demo Notes as `a-notes`; bob's connect link, opened
 * while alice is still signed in, shows "This link belongs to another account" with sign-out and
 * retry; after signing out and in as bob the same link continues, the upstream asks for a login
 * (`prompt=login`: bob is not the browser's last connector) instead of reusing alice's upstream
 * session, and bob binds `b-notes`. Each user's `whoami` through the gateway answers their own
 * account. The same user connecting again is not asked to log in again — which also shows that
 * without the prompt the upstream does reuse its session silently. And the README's two-users
 * walk on the setup page of the gateway's own OAuth: alice approves a client, then bob's
 * authorization lands on the page as alice, Sign out, bob signs in, connects (the upstream's
 * login form again) and approves; each client's token reaches its own upstream account.
 *
 * Needs `/usr/bin/chromium`; skipped without it unless CI=true.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { chromiumSkip, launchChromium } from "../helpers/chromium.js";
import type { OAuthUpstream } from "../fixtures/oauth-upstream.js";
import type { RunningGateway } from "../helpers/harness.js";
import { connectLink, sdkClient, startIdentity, startScenario, startSetupPageEnv, whoami, type Identity, type Scenario } from "./upstream-oauth-kit.js";

describe("two gateway users in one browser", { skip: chromiumSkip }, () => {
  let identity: Identity;
  let s: Scenario;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** Usernames signed in at the upstream's login form, in order (the demo's own log). */
  const upstreamLogins: string[] = [];
  /** Times the upstream rendered its login form. */
  let loginForms = 0;
  const csp: string[] = [];

  before(async () => {
    identity = await startIdentity();
    s = await startScenario(identity, {
      onEvent: (line) => {
        const m = /^login (\S+)$/.exec(line);
        if (m) upstreamLogins.push(m[1]!);
      },
    });
    browser = await launchChromium();
    context = await browser.newContext();
    page = await context.newPage();
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) csp.push(m.text());
    });
    page.on("response", (r) => {
      const u = new URL(r.url());
      if (u.origin === s.upstream.origin && /\/interaction\/[^/]+$/.test(u.pathname) && r.status() === 200 && r.request().method() === "GET") loginForms++;
    });
  });
  after(async () => {
    await context?.close();
    await browser?.close();
    await s?.close();
    await identity?.close();
  });

  const upstreamOrigin = () => new URL(s.upstream.origin).origin;
  const lastPrompt = () => s.upstream.authorizationRequests.at(-1)?.prompt;
  const linkFor = (user: string) => connectLink(s.gw.url, identity, user);
  async function whoamiOf(user: string): Promise<string> {
    const c = sdkClient(s.gw.url, await identity.token(user));
    await c.connect();
    try {
      return await whoami(c.client);
    } finally {
      await c.close();
    }
  }
  async function devLogin(user: string): Promise<void> {
    await page.waitForURL(/\/oauth\/dev-login\?/);
    assert.match(await page.locator("header.account").innerText(), /Not signed in/);
    assert.equal(await page.locator("header.account form").count(), 0, "no sign-out for a signed-out visitor");
    await page.fill("#username", user);
    await page.click('main button[type="submit"]');
  }
  async function upstreamLogin(account: string): Promise<void> {
    await page.waitForURL((u) => u.origin === upstreamOrigin());
    await page.locator('input[name="username"]').waitFor();
    await page.fill('input[name="username"]', account);
    await Promise.all([page.waitForURL(/\/auth\/connections\/notes\/callback\?/), page.click('button[type="submit"]')]);
  }
  async function accountBar(): Promise<string> {
    return page.locator("header.account").innerText();
  }

  test("alice connects; bob, in the same browser, signs out alice, gets the upstream's login form, binds his own account", async () => {
    // Alice: the connect link signs her in, then the upstream's login form (nobody connected from here before).
    await page.goto(await linkFor("alice"));
    await devLogin("alice");
    await upstreamLogin("a-notes");
    assert.match(await page.locator("h1").innerText(), /Demo Notes is connected/);
    assert.match(await accountBar(), /Signed in as alice/);
    assert.equal(await page.locator("header.account button", { hasText: "Sign out" }).count(), 1);
    assert.equal(lastPrompt(), undefined, "no fresh login asked: nobody connected from this browser before");
    const memory = (await context.cookies(s.gw.url)).find((c) => c.name === "tollgate_upstream_users");
    assert.ok(memory?.httpOnly, "the last-connector cookie is set, HttpOnly");
    assert.doesNotMatch(memory.value, /alice|notes/i, "it names nobody");

    // Bob's link, opened while alice is signed in: refused, with the way out.
    const bobLink = await linkFor("bob");
    const refused = await page.goto(bobLink);
    assert.equal(refused?.status(), 403);
    assert.match(await page.locator("h1").innerText(), /This link belongs to another account/);
    assert.match(await page.locator("main").innerText(), /signed in as alice.*Nothing was connected/s);
    assert.match(await accountBar(), /Signed in as alice/);
    assert.equal(await page.locator("main a.button", { hasText: "Try again" }).getAttribute("href"), new URL(bobLink).pathname + new URL(bobLink).search);
    // Sign out and use this link: the gateway forgets alice, asks who is there, and comes back to bob's link.
    await page.locator("main button", { hasText: "Sign out and use this link" }).click();
    await page.waitForURL(/\/oauth\/dev-login\?/);
    assert.equal((await context.cookies(s.gw.url)).some((c) => c.name === "tollgate_session"), false, "session cookie cleared");
    assert.equal(new URL(page.url()).searchParams.get("return_to"), new URL(bobLink).pathname + new URL(bobLink).search, "sign-in returns to bob's link");
    const formsBefore = loginForms;
    await devLogin("bob");
    // Bob is not the browser's last connector: the upstream shows its login form, not alice's session.
    await upstreamLogin("b-notes");
    assert.equal(lastPrompt(), "login");
    assert.equal(loginForms, formsBefore + 1, "the upstream rendered its login form");
    assert.match(await page.locator("h1").innerText(), /Demo Notes is connected/);
    assert.match(await accountBar(), /Signed in as bob/);
    assert.deepEqual(upstreamLogins, ["a-notes", "b-notes"]);

    assert.equal(await whoamiOf("alice"), "a-notes");
    assert.equal(await whoamiOf("bob"), "b-notes");
    assert.deepEqual(csp, [], "no CSP violations");
  });

  test("the same user connecting again is not asked to log in again; the upstream reuses its session", async () => {
    // Bob disconnects and reconnects from his connections page.
    await page.goto(`${s.gw.url}/__tollgate/connections`);
    assert.match(await accountBar(), /Signed in as bob/);
    await page.click('button[name="decision"][value="disconnect:notes"]');
    await page.waitForURL(/done=disconnected/);
    const formsBefore = loginForms;
    await Promise.all([page.waitForURL(/\/auth\/connections\/notes\/callback\?/), page.click('button[name="decision"][value="connect:notes"]')]);
    assert.equal(lastPrompt(), undefined, "bob connected last from this browser: no prompt");
    assert.equal(loginForms, formsBefore, "no login form: the upstream reused bob's session");
    assert.match(await page.locator("h1").innerText(), /Demo Notes is connected/);
    assert.equal(await whoamiOf("bob"), "b-notes");

    // Signing out from the account bar ends the session: the next page says nobody is signed in.
    await page.goto(`${s.gw.url}/__tollgate/connections`);
    await page.locator("header.account button", { hasText: "Sign out" }).click();
    await page.waitForURL(/\/oauth\/dev-login\?/);
    assert.match(await accountBar(), /Not signed in/);
    // Alice again (bob connected last): the upstream is asked for a login once more.
    await page.fill("#username", "alice");
    await page.click('main button[type="submit"]');
    await page.waitForURL(/\/__tollgate\/connections$/);
    assert.match(await accountBar(), /Signed in as alice/);
    await page.click('button[name="decision"][value="disconnect:notes"]');
    await page.waitForURL(/done=disconnected/);
    await page.click('button[name="decision"][value="connect:notes"]');
    await upstreamLogin("a-notes");
    assert.equal(lastPrompt(), "login");
    assert.equal(await whoamiOf("alice"), "a-notes");
    assert.equal(await whoamiOf("bob"), "b-notes");
    assert.deepEqual(csp, [], "no CSP violations");
  });
});

describe("two gateway users in one browser, on the setup page", { skip: chromiumSkip }, () => {
  let env: Awaited<ReturnType<typeof startSetupPageEnv>>;
  let gw: RunningGateway;
  let upstream: OAuthUpstream;
  let browser: Browser;
  let redirectUri: string;

  before(async () => {
    env = await startSetupPageEnv({ title: "two users" });
    ({ gw, upstream, redirectUri } = env);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await env?.close();
  });

  const authorization = () => env.authorization("Two users (test)", { state: "s" });
  /** Trades the code the browser landed with for the gateway's access token and asks whoami with it. */
  async function whoamiWith(landed: string, a: { clientId: string; verifier: string }): Promise<string> {
    const code = new URL(landed).searchParams.get("code");
    assert.ok(code, `a code in ${landed}`);
    const res = await fetch(`${gw.url}/__tollgate/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "authorization_code", code, code_verifier: a.verifier, client_id: a.clientId, redirect_uri: redirectUri, resource: `${gw.url}/mcp/notes` }),
    });
    const token = String(((await res.json()) as { access_token: string }).access_token);
    const c = sdkClient(gw.url, token);
    await c.connect();
    try {
      return await whoami(c.client);
    } finally {
      await c.close();
    }
  }

  test("alice approves; bob signs out alice on the setup page, connects his own account, approves", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const onUpstream = (u: URL) => u.origin === new URL(upstream.origin).origin;
    const connectAndApprove = async (account: string) => {
      const setup = page.url();
      await page.locator("a.button.big", { hasText: "Connect Demo Notes" }).click();
      await page.waitForURL(onUpstream);
      await page.fill('input[name="username"]', account);
      await page.click('button[type="submit"]');
      await page.waitForURL((u) => u.href === setup);
      const landed = page.waitForURL((u) => u.href.startsWith(redirectUri));
      await page.click('button[name="decision"][value="approve"]');
      await landed;
      return page.url();
    };
    try {
      const a = await authorization();
      await page.goto(a.url);
      await page.waitForURL(/\/oauth\/dev-login\?/);
      await page.fill("#username", "alice");
      await page.click('main button[type="submit"]');
      await page.waitForURL(/\/oauth\/setup\?req=/);
      assert.match(await page.locator("header.account").innerText(), /Signed in as alice/);
      const aliceLanded = await connectAndApprove("alice-notes");

      // Bob's client: the browser is still alice's, so the setup page says so; bob signs out.
      const b = await authorization();
      await page.goto(b.url);
      await page.waitForURL(/\/oauth\/setup\?req=/);
      const bobSetup = page.url();
      assert.match(await page.locator("header.account").innerText(), /Signed in as alice/);
      await page.locator("header.account button", { hasText: "Sign out" }).click();
      await page.waitForURL(/\/oauth\/dev-login\?/);
      assert.match(await page.locator("header.account").innerText(), /Not signed in/);
      await page.fill("#username", "bob");
      await page.click('main button[type="submit"]');
      await page.waitForURL((u) => u.href === bobSetup);
      assert.match(await page.locator("header.account").innerText(), /Signed in as bob/);
      assert.equal(await page.locator('li[data-upstream="notes"]').getAttribute("data-state"), "not-connected");
      const bobLanded = await connectAndApprove("bob-notes");
      assert.equal(upstream.authorizationRequests.at(-1)?.prompt, "login", "bob was asked for a fresh upstream login");

      assert.equal(await whoamiWith(aliceLanded, a), "alice-notes");
      assert.equal(await whoamiWith(bobLanded, b), "bob-notes");
    } finally {
      await context.close();
    }
  });
});
