/**
 * Who is signed in, on the connect pages (the demo upstream, the cookie-keeping test browser):
 * problem, success and refusal pages show the account bar with sign-out to a signed-in visitor
 * and "Not signed in" without any sign-out to a signed-out one; "This link belongs to another
 * account" leads, through sign-out, back to the same link, which the right user then completes;
 * a wrong user's confirmation POST does not use the link up.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { mainForm, TestBrowser, type BrowserPage } from "../fixtures/oauth-upstream.js";
import { connectLink, sdkClient, startIdentity, startScenario, whoami, type Identity, type Scenario } from "./upstream-oauth-kit.js";

let identity: Identity;
let s: Scenario;
before(async () => {
  identity = await startIdentity();
  s = await startScenario(identity, {});
});
after(async () => {
  await s?.close();
  await identity?.close();
});

const linkFor = (user: string) => connectLink(s.gw.url, identity, user);

/** Fills `username` on login pages (the gateway's dev login, the upstream's sign-in). */
const fill = (user: string) => (p: BrowserPage): Record<string, string> => (/name="username"/.test(p.text) ? { username: user } : {});
const signOutForms = (page: BrowserPage) => page.forms.filter((f) => f.action.pathname === "/__tollgate/logout");
const bar = (page: BrowserPage) => /<header class="account"[^>]*>(.*?)<\/header>/s.exec(page.text)?.[1] ?? "";

async function signIn(browser: TestBrowser, user: string): Promise<BrowserPage> {
  const login = await browser.open(`${s.gw.url}/__tollgate/oauth/dev-login?return_to=%2F__tollgate%2Fconnections`);
  return browser.submit(login, { username: user });
}

test("problem pages show the account bar: sign-out when signed in, 'Not signed in' and no sign-out otherwise", async () => {
  const browser = new TestBrowser();
  const bogus = `${s.gw.url}/__tollgate/auth/connections/notes/connect?redirect=true&operationId=notes-mcp&browserTicket=${"x".repeat(43)}`;
  const out = await browser.open(bogus);
  assert.equal(out.status, 410);
  assert.match(bar(out), /Not signed in/);
  assert.match(bar(out), /href="\/__tollgate\/login\?return_to/);
  assert.equal(signOutForms(out).length, 0);

  const list = await signIn(browser, "dora");
  assert.equal(list.status, 200);
  assert.match(bar(list), /Signed in as <strong>dora<\/strong>/);
  assert.equal(signOutForms(list)[0]?.fields.return_to, "/__tollgate/connections", "the connections page signs out back to itself");
  const expired = await browser.open(bogus);
  assert.equal(expired.status, 410);
  assert.match(bar(expired), /Signed in as <strong>dora<\/strong>/);
  assert.equal(signOutForms(expired).length, 1);
  const unknown = await browser.open(`${s.gw.url}/__tollgate/auth/connections/nope/connect?redirect=true`);
  assert.equal(unknown.status, 404);
  assert.match(bar(unknown), /Signed in as <strong>dora<\/strong>/);

  // Sign out from the bar: the session cookie goes, the page it returns to asks for sign-in.
  const back = await browser.submit(list, {}, { formIndex: list.forms.indexOf(signOutForms(list)[0]!) });
  assert.match(back.url.pathname, /\/oauth\/dev-login$/);
  assert.equal(back.url.searchParams.get("return_to"), "/__tollgate/connections");
  assert.ok(!browser.cookieNames(new URL(s.gw.url).hostname).includes("tollgate_session"));
  assert.match(bar(back), /Not signed in/);
});

test("another account's link: sign out and use this link brings the right user back to it, who connects", async () => {
  const link = await linkFor("carol");
  const browser = new TestBrowser();
  await signIn(browser, "mallory");
  const refused = await browser.open(link);
  assert.equal(refused.status, 403);
  assert.match(refused.text, /This link belongs to another account/);
  assert.match(refused.text, /You are signed in as mallory/);
  assert.doesNotMatch(refused.text, /carol/, "the page does not say whose link it is");
  assert.equal(mainForm(refused), undefined, "nothing to submit but sign-out");
  const linkPath = new URL(link).pathname + new URL(link).search;
  assert.match(refused.text, new RegExp(`<a class="button secondary" href="${linkPath.replace(/[?]/g, "\\?").replace(/&/g, "&#38;").replace(/=/g, "&#61;")}"`));
  const [barForm, retry] = signOutForms(refused);
  assert.equal(barForm?.fields.return_to, linkPath);
  assert.equal(retry?.fields.return_to, linkPath);

  // Sign out and use this link → sign in (as carol) → the link → the upstream.
  const login = await browser.submit(refused, {}, { formIndex: refused.forms.indexOf(retry!) });
  assert.match(login.url.pathname, /\/oauth\/dev-login$/);
  assert.equal(login.url.searchParams.get("return_to"), linkPath);
  const done = await browser.walk(login.url, { values: fill("carol") });
  assert.equal(done.status, 200, done.text.slice(0, 500));
  assert.match(done.text, /Demo Notes is connected/);
  assert.match(bar(done), /Signed in as <strong>carol<\/strong>/);
  const c = sdkClient(s.gw.url, await identity.token("carol"));
  await c.connect();
  assert.equal(await whoami(c.client), "carol");
  await c.close();
});

test("a confirmation posted by another signed-in user binds nothing and leaves the link usable", async () => {
  const link = new URL(await linkFor("erin"));
  const ticket = link.searchParams.get("browserTicket")!;
  const mallory = new TestBrowser();
  const list = await signIn(mallory, "mallory");
  const csrf = signOutForms(list)[0]!.fields.csrf!;
  const posted = await mallory.open(`${s.gw.url}/__tollgate/auth/connections/notes/connect`, {
    method: "POST",
    body: new URLSearchParams({ ticket, csrf, decision: "connect" }),
  });
  assert.equal(posted.status, 403);
  assert.match(posted.text, /This link belongs to another account/);
  // Erin's link still works for erin.
  const erin = new TestBrowser();
  const done = await erin.walk(link, { values: fill("erin") });
  assert.match(done.text, /Demo Notes is connected/);
});
