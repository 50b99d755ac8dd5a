/**
 * The connect pages' defences, against the real demo upstream: the callback only completes in
 * the browser that started it and only once; the upstream's error text is shown escaped; a
 * forged `iss` is refused; without any browser login the links are bearer links (start-up
 * warning) and the page still demands an explicit confirmation.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { TestBrowser } from "../fixtures/oauth-upstream.js";
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

const linkFor = (scenario: Scenario, user: string) => connectLink(scenario.gw.url, identity, user);

/** Walks the flow in `browser` up to the redirect to the upstream's authorization endpoint. */
async function untilAuthorize(browser: TestBrowser, user: string): Promise<URL> {
  const page = await browser.walk(await linkFor(s, user), {
    values: () => ({ username: user }),
    stopAt: (u) => u.origin === s.upstream.origin && u.pathname.endsWith("/auth"),
  });
  assert.equal(page.status, 0, `stopped at the authorization endpoint, got ${page.url.href}`);
  return page.url;
}

test("the callback completes only in the browser that started it, and only once", async () => {
  const alice = new TestBrowser();
  const page = await alice.walk(await linkFor(s, "alice"), {
    values: () => ({ username: "alice" }),
    stopAt: (u) => u.pathname.endsWith("/connections/notes/callback"),
  });
  assert.equal(page.status, 0);
  const callback = page.url;
  const other = await new TestBrowser().open(callback);
  assert.equal(other.status, 400);
  assert.match(other.text, /another browser/);
  const ok = await alice.open(callback);
  assert.equal(ok.status, 200, ok.text.slice(0, 300));
  assert.match(ok.text, /is connected/);
  const replay = await alice.open(callback);
  assert.equal(replay.status, 400);
  assert.match(replay.text, /expired/);
});

test("the upstream's error is shown escaped; nothing is connected", async () => {
  const bob = new TestBrowser();
  const authorize = await untilAuthorize(bob, "bob");
  const cb = new URL(authorize.searchParams.get("redirect_uri")!);
  cb.searchParams.set("state", authorize.searchParams.get("state")!);
  cb.searchParams.set("iss", s.upstream.issuer);
  cb.searchParams.set("error", "access_denied");
  cb.searchParams.set("error_description", `<script>alert("x")</script>`);
  const page = await bob.open(cb);
  assert.equal(page.status, 400);
  assert.match(page.text, /access_denied/);
  assert.ok(!page.text.includes("<script>alert"), "upstream text is escaped");
  assert.match(page.text, /&#60;script&#62;/);
  await linkFor(s, "bob"); // still not connected
});

test("a forged iss in the callback is refused (RFC 9207)", async () => {
  const carol = new TestBrowser();
  const authorize = await untilAuthorize(carol, "carol");
  const cb = new URL(authorize.searchParams.get("redirect_uri")!);
  cb.searchParams.set("state", authorize.searchParams.get("state")!);
  cb.searchParams.set("code", "forged-code");
  cb.searchParams.set("iss", "https://evil.example");
  const page = await carol.open(cb);
  assert.equal(page.status, 400);
  assert.match(page.text, /was not connected/);
  assert.equal(s.upstream.tokenRequestLog.filter((r) => r.grantType === "authorization_code" && r.status !== 200).length, 0, "no code exchange attempted");
});

test("the connect URL without redirect=true answers 428 with the connect-required payload", async () => {
  const link = new URL(await linkFor(s, "frank"));
  link.searchParams.delete("redirect");
  const res = await fetch(link, { redirect: "manual" });
  assert.equal(res.status, 428);
  const body = (await res.json()) as Record<string, unknown>;
  assert.deepEqual({ ...body, authUrl: undefined }, {
    state: "authenticating",
    upstreamServerId: "notes",
    operationId: link.searchParams.get("operationId"),
    authUrl: undefined,
    nextAction: "redirect",
    authProfileId: "notes:user-oauth",
  });
  const authUrl = new URL(String(body.authUrl));
  assert.equal(authUrl.searchParams.get("redirect"), "true");
  assert.equal(authUrl.searchParams.get("browserTicket"), link.searchParams.get("browserTicket"));
  // Asking did not use the ticket up: the browser link still works.
  const browser = new TestBrowser();
  const login = await browser.open(authUrl);
  const upstreamAuthorize = await browser.submit(login, { username: "frank" }, { stopAt: (u) => u.origin === s.upstream.origin });
  assert.equal(upstreamAuthorize.status, 0, "straight to the upstream");
});

test("a connect link that is cancelled is used up", async () => {
  const dave = new TestBrowser();
  // A link of the earlier form (`…/connections/<id>/connect?ticket=…`) shows the confirmation page.
  const issued = new URL(await linkFor(s, "dave"));
  const link = `${s.gw.url}/__tollgate/connections/notes/connect?ticket=${issued.searchParams.get("browserTicket")}`;
  const login = await dave.open(link);
  const confirm = await dave.submit(login, { username: "dave" });
  assert.match(confirm.text, /Connect Demo Notes to dave/);
  const cancelled = await dave.submit(confirm, {}, { button: { name: "decision", value: "cancel" } });
  assert.match(cancelled.text, /not connected/);
  const again = await dave.open(link);
  assert.equal(again.status, 410);
});

test("without any browser login: a start-up warning, and an explicit confirmation still required", async () => {
  const bare = await startScenario(identity, {}, {}, { settings: { devLogin: false } });
  try {
    await new Promise((r) => setImmediate(r));
    assert.ok(bare.gw.logs.some((l) => l.includes("connect links are bearer links")), "start-up warning");
    const link = await linkFor(bare, "erin");
    const browser = new TestBrowser();
    const confirm = await browser.open(link);
    assert.equal(confirm.status, 200);
    assert.match(confirm.text, /cannot check who opened this link/);
    // Posting without the form's CSRF value is refused.
    const forged = await browser.open(confirm.forms[0]!.action, {
      method: "POST",
      body: new URLSearchParams({ ticket: new URL(link).searchParams.get("browserTicket")!, decision: "connect" }),
    });
    assert.equal(forged.status, 403);
    const done = await browser.walk(link, { values: () => ({ username: "erin" }) });
    assert.match(done.text, /is connected/);
    const c = sdkClient(bare.gw.url, await identity.token("erin"));
    await c.connect();
    assert.equal(await whoami(c.client), "erin");
    await c.close();
  } finally {
    await bare.close();
  }
});
