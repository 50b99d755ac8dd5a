import { after, test } from "node:test";
import assert from "node:assert/strict";
import { testServices } from "../../test/helpers/test-kit.js";
import type { GatewayServices, GatewaySettings } from "../pipeline/services.js";
import {
  csrfToken,
  ensureWebRoutes,
  getBrowserUser,
  htmlPage,
  isAdmin,
  pageAccount,
  registerBrowserLogin,
  requireBrowserUser,
  safeReturnTo,
  verifyCsrf,
  type BrowserLoginConfig,
} from "./index.js";
import { idpPrompt } from "./login/idp.js";

const opened: Array<{ close(): Promise<void> }> = [];
after(async () => {
  for (const s of opened) await s.close();
});

function services(over: Partial<GatewaySettings> = {}): GatewayServices {
  const s = testServices({ settings: { publicUrl: "http://127.0.0.1:8787", devLogin: true, ...over } });
  opened.push(s);
  return s;
}

async function call(s: GatewayServices, req: Request, remoteAddress = "127.0.0.1"): Promise<Response> {
  const m = s.systemRoutes.match(req.method, new URL(req.url).pathname);
  assert.ok(m && "handler" in m, `no system route for ${req.method} ${req.url}`);
  return m.handler(req, { params: m.params, requestId: "t", services: s, remoteAddress });
}

const cookiesOf = (res: Response) => res.headers.getSetCookie().map((c) => c.split(";")[0]!).join("; ");

async function devLogin(s: GatewayServices, username: string, returnTo = "/__tollgate/connections") {
  const base = s.settings.publicUrl + s.settings.basePath;
  const page = await call(s, new Request(`${base}/login/dev?return_to=${encodeURIComponent(returnTo)}`));
  assert.equal(page.status, 200);
  const html = await page.text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!;
  const body = new URLSearchParams({ username, csrf, return_to: returnTo });
  return call(
    s,
    new Request(`${base}/login/dev`, {
      method: "POST",
      body,
      headers: { cookie: cookiesOf(page), "content-type": "application/x-www-form-urlencoded", origin: s.settings.publicUrl },
    }),
  );
}

test("htmlPage sets strict headers and escapes the title", async () => {
  const res = htmlPage("<x>", "<p>ok</p>", { formAction: ["http://127.0.0.1:5555/cb", "cursor://x/y"] });
  const csp = res.headers.get("content-security-policy")!;
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /form-action 'self' http:\/\/127\.0\.0\.1:5555 cursor:/);
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  assert.equal(res.headers.get("referrer-policy"), "no-referrer");
  assert.match(await res.text(), /<title>&#60;x&#62;<\/title>/);
});

test("dev login creates a session, CSRF is bound to it, return_to stays same-origin", async () => {
  const s = services();
  ensureWebRoutes(s);
  const res = await devLogin(s, "alice", "https://evil.example/steal");
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "/__tollgate/connections");
  const setCookie = res.headers.getSetCookie().find((c) => c.startsWith("tollgate_session="))!;
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Lax/);
  assert.match(setCookie, /Path=\//);
  assert.doesNotMatch(setCookie, /Secure/);
  const cookie = setCookie.split(";")[0]!;
  const req = new Request("http://127.0.0.1:8787/x", { headers: { cookie } });
  assert.deepEqual((await getBrowserUser(req, s))?.sub, "alice");
  const token = await csrfToken(req, s);
  assert.equal(await verifyCsrf(req, s, token), true);
  assert.equal(await verifyCsrf(req, s, token + "x"), false);
  assert.equal(await verifyCsrf(new Request("http://127.0.0.1:8787/x"), s, token), false);
  assert.equal(await getBrowserUser(new Request("http://127.0.0.1:8787/x", { headers: { cookie: "tollgate_session=forged" } }), s), undefined);
});

test("dev login keeps a same-origin return_to", async () => {
  const s = services();
  ensureWebRoutes(s);
  const res = await devLogin(s, "bob", "/__tollgate/oauth/consent?req=abc");
  assert.equal(res.headers.get("location"), "/__tollgate/oauth/consent?req=abc");
});

test("dev login refuses non-loopback peers, proxied requests, and when disabled", async () => {
  const s = services();
  ensureWebRoutes(s);
  const url = "http://127.0.0.1:8787/__tollgate/login/dev";
  assert.equal((await call(s, new Request(url), "203.0.113.9")).status, 403);
  assert.equal((await call(s, new Request(url), "::ffff:127.0.0.1")).status, 200);
  assert.equal((await call(s, new Request(url, { headers: { "x-forwarded-for": "203.0.113.9" } }))).status, 403);
  const post = new Request(url, { method: "POST", body: "username=eve", headers: { "content-type": "application/x-www-form-urlencoded" } });
  assert.equal((await call(s, post, "10.0.0.5")).status, 403);
  const off = services({ devLogin: false });
  ensureWebRoutes(off);
  assert.equal((await call(off, new Request(url))).status, 403);
});

test("dev login POST without the form nonce or from another origin is refused", async () => {
  const s = services();
  ensureWebRoutes(s);
  const url = "http://127.0.0.1:8787/__tollgate/login/dev";
  const noNonce = new Request(url, { method: "POST", body: "username=eve&csrf=abc", headers: { "content-type": "application/x-www-form-urlencoded", cookie: "tollgate_form=abd" } });
  assert.equal((await call(s, noNonce)).status, 403);
  const cross = new Request(url, { method: "POST", body: "username=eve&csrf=abc", headers: { "content-type": "application/x-www-form-urlencoded", cookie: "tollgate_form=abc", origin: "https://evil.example" } });
  assert.equal((await call(s, cross)).status, 403);
});

test("requireBrowserUser redirects to login, or explains when none is available", async () => {
  const s = services();
  const r = await requireBrowserUser(new Request("http://127.0.0.1:8787/a"), s, "/__tollgate/connections/x/connect?ticket=t");
  assert.ok(r instanceof Response);
  assert.equal(r.status, 302);
  assert.equal(r.headers.get("location"), "/__tollgate/login?return_to=%2F__tollgate%2Fconnections%2Fx%2Fconnect%3Fticket%3Dt");
  const login = await call(s, new Request(`http://127.0.0.1:8787${r.headers.get("location")}`));
  assert.equal(login.status, 302);
  assert.match(login.headers.get("location")!, /^\/__tollgate\/oauth\/dev-login\?return_to=/);
  const none = await requireBrowserUser(new Request("http://127.0.0.1:8787/a"), services({ devLogin: false }), "/x");
  assert.ok(none instanceof Response);
  assert.equal(none.status, 403);
});

test("https origin: __Host- cookie with Secure", async () => {
  const s = services({ publicUrl: "https://gw.example.com" });
  ensureWebRoutes(s);
  const res = await devLogin(s, "carol");
  const c = res.headers.getSetCookie().find((x) => x.startsWith("__Host-tollgate_session="));
  assert.ok(c);
  assert.match(c, /; Secure/);
});

test("isAdmin by subject or claim (string or array)", () => {
  const st = services({ adminSubjects: ["root"], adminClaim: { name: "groups", values: ["gw-admins"] } }).settings;
  assert.equal(isAdmin({ sub: "root", data: {} }, st), true);
  assert.equal(isAdmin({ sub: "u", data: { groups: ["x", "gw-admins"] } }, st), true);
  assert.equal(isAdmin({ sub: "u", data: { groups: "gw-admins" } }, st), true);
  assert.equal(isAdmin({ sub: "u", data: { groups: ["x"] } }, st), false);
  assert.equal(isAdmin(undefined, st), false);
});

test("safeReturnTo rejects other origins and protocol-relative paths", () => {
  const s = services();
  assert.equal(safeReturnTo("//evil.example/x", s), "/__tollgate/connections");
  assert.equal(safeReturnTo("javascript:alert(1)", s), "/__tollgate/connections");
  assert.equal(safeReturnTo("/\\evil.example", s), "/__tollgate/connections");
  assert.equal(safeReturnTo("http://127.0.0.1:8787/ok?a=1", s), "/ok?a=1");
});

test("a second browser login at another IdP is a start-up error (subjects of two issuers would mix)", () => {
  const s = services();
  const login = { url: "https://a.example/authorize", tokenUrl: "https://a.example/token", clientId: "gw", issuer: "https://a.example", jwksUrl: "https://a.example/jwks" };
  registerBrowserLogin(s, login);
  // Same IdP, another client registration: the subjects are the same; the first one is used.
  registerBrowserLogin(s, { ...login, clientId: "other" });
  assert.throws(
    () => registerBrowserLogin(s, { ...login, issuer: "https://b.example", url: "https://b.example/authorize" }),
    /another identity provider/,
  );
});

test("pages show who is signed in with a sign-out form, or that nobody is (no sign-out)", async () => {
  const s = services();
  ensureWebRoutes(s);
  const signedOut = await pageAccount(new Request("http://127.0.0.1:8787/x"), s, { returnTo: "/__tollgate/connections" });
  assert.deepEqual(signedOut, { signedOut: true, signIn: "/__tollgate/login?return_to=%2F__tollgate%2Fconnections" });
  const outHtml = await htmlPage("t", "<p>x</p>", { account: signedOut }).text();
  assert.match(outHtml, /<header class="account" data-signed-in="false"><span>Not signed in<\/span><a class="link" href="\/__tollgate\/login\?return_to&#61;%2F__tollgate%2Fconnections">Sign in<\/a><\/header>/);
  assert.doesNotMatch(outHtml, /<form/);
  assert.doesNotMatch(outHtml, /Sign out/);
  // Without any browser login there is nowhere to sign in.
  assert.deepEqual(await pageAccount(new Request("http://127.0.0.1:8787/x"), services({ devLogin: false })), { signedOut: true });

  const cookie = (await devLogin(s, "alice")).headers.getSetCookie().find((c) => c.startsWith("tollgate_session="))!.split(";")[0]!;
  const req = new Request("http://127.0.0.1:8787/x", { headers: { cookie } });
  const signedIn = await pageAccount(req, s, { returnTo: "https://evil.example/x" });
  assert.ok(signedIn && !("signedOut" in signedIn));
  assert.equal(signedIn.label, "alice");
  assert.equal(signedIn.action, "/__tollgate/logout");
  assert.equal(signedIn.csrf, await csrfToken(req, s));
  assert.equal(signedIn.returnTo, "/__tollgate/connections", "return_to stays same-origin");
  const inHtml = await htmlPage("t", "<p>x</p>", { account: signedIn }).text();
  assert.match(inHtml, /Signed in as <strong>alice<\/strong>/);
  assert.match(inHtml, /<form method="post" action="\/__tollgate\/logout"><input type="hidden" name="csrf" value="[^"]+">/);
  assert.match(inHtml, /<button type="submit" class="link">Sign out<\/button>/);
});

test("sign-out (POST with the CSRF token) ends the session, clears the cookie and marks the browser", async () => {
  const s = services();
  ensureWebRoutes(s);
  const cookie = (await devLogin(s, "alice")).headers.getSetCookie().find((c) => c.startsWith("tollgate_session="))!.split(";")[0]!;
  const req = new Request("http://127.0.0.1:8787/x", { headers: { cookie } });
  const csrf = await csrfToken(req, s);
  const post = (body: Record<string, string>, origin = s.settings.publicUrl) =>
    call(
      s,
      new Request("http://127.0.0.1:8787/__tollgate/logout", {
        method: "POST",
        body: new URLSearchParams(body),
        headers: { cookie, "content-type": "application/x-www-form-urlencoded", origin },
      }),
    );
  // Wrong token, or another site: refused, still signed in, and the page says so.
  const forged = await post({ csrf: "nope" });
  assert.equal(forged.status, 403);
  assert.match(await forged.text(), /Signed in as <strong>alice<\/strong>/);
  assert.equal((await post({ csrf }, "https://evil.example")).status, 403);
  assert.equal((await getBrowserUser(req, s))?.sub, "alice");
  // A GET does not sign out.
  const get = s.systemRoutes.match("GET", "/__tollgate/logout");
  assert.ok(!get || !("handler" in get), "no GET sign-out");

  const res = await post({ csrf, return_to: "/__tollgate/auth/connections/notes/connect?redirect=true&browserTicket=t" });
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "/__tollgate/auth/connections/notes/connect?redirect=true&browserTicket=t");
  const set = res.headers.getSetCookie();
  assert.ok(set.some((c) => /^tollgate_session=;/.test(c) && /Max-Age=0/.test(c)), "session cookie cleared");
  assert.ok(set.some((c) => /^tollgate_signed_out=1;/.test(c)), "signed-out marker");
  assert.equal(await getBrowserUser(req, s), undefined, "the session record is gone too");
  // Without return_to: the signed-out page, which has no sign-out.
  const cookie2 = (await devLogin(s, "bob")).headers.getSetCookie().find((c) => c.startsWith("tollgate_session="))!.split(";")[0]!;
  const csrf2 = await csrfToken(new Request("http://127.0.0.1:8787/x", { headers: { cookie: cookie2 } }), s);
  const plain = await call(
    s,
    new Request("http://127.0.0.1:8787/__tollgate/logout", {
      method: "POST",
      body: new URLSearchParams({ csrf: csrf2 }),
      headers: { cookie: cookie2, "content-type": "application/x-www-form-urlencoded" },
    }),
  );
  assert.equal(plain.headers.get("location"), "/__tollgate/login/signed-out");
  const page = await call(s, new Request(`http://127.0.0.1:8787/__tollgate/login/signed-out`));
  const html = await page.text();
  assert.match(html, /Not signed in/);
  assert.doesNotMatch(html, /Sign out/);
});

test("after a sign-out the next IdP sign-in asks for a fresh login (prompt), then no more", async () => {
  const login = { url: "https://idp.example/authorize", tokenUrl: "https://idp.example/token", clientId: "gw", issuer: "https://idp.example", jwksUrl: "https://idp.example/jwks" };
  const start = async (cfg: Partial<BrowserLoginConfig>, cookie?: string) => {
    const s = services({ devLogin: false });
    registerBrowserLogin(s, { ...login, ...cfg });
    const res = await call(s, new Request("http://127.0.0.1:8787/__tollgate/login", cookie ? { headers: { cookie } } : {}));
    assert.equal(res.status, 302);
    return new URL(res.headers.get("location")!).searchParams.get("prompt");
  };
  assert.equal(await start({}), null);
  assert.equal(await start({}, "tollgate_signed_out=1"), "login");
  assert.equal(await start({ reloginPrompt: "select_account" }, "tollgate_signed_out=1"), "select_account");
  assert.equal(await start({ reloginPrompt: false }, "tollgate_signed_out=1"), null);
  // A prompt the provider's fixed parameters name is kept as it is.
  assert.equal(await start({ authorizationParams: { prompt: "consent" } }, "tollgate_signed_out=1"), "consent");
  assert.equal(idpPrompt({ ...login }, false), undefined);
});
