/**
 * The official MCP SDK client with its own `OAuthClientProvider` against the quickstart project,
 * the browser steps in chromium: sign-in with the Demo Notes connect on the consent page; sign-in
 * without it (the handshake still succeeds, the first list asks to connect, the same session
 * works once connected); and a disconnect in the middle of a session. In both of the latter the
 * client receives `notifications/elicitation/complete` once chromium has finished the connect.
 *
 * Skipped when chromium is missing, unless CI=true (then it fails).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { ElicitationCompleteNotificationSchema, McpError } from "@modelcontextprotocol/sdk/types.js";
import { MemoryOAuthClientProvider } from "../fixtures/oauth-upstream.js";
import { chromiumSkip, launchChromium } from "../helpers/chromium.js";
import { newPage, startCallbackServer, startQuickstart, walk, type Quickstart } from "./clients-kit.js";

const skip = chromiumSkip;

let qs: Quickstart;
let browser: Browser;
let callback: Awaited<ReturnType<typeof startCallbackServer>>;

before(async () => {
  if (skip) return;
  qs = await startQuickstart();
  browser = await launchChromium();
  callback = await startCallbackServer();
});
after(async () => {
  await callback?.close();
  await browser?.close();
  await qs?.close();
});

/** Signs the SDK client in through the gateway's OAuth in `page`; returns its provider. */
async function signIn(page: Page, user: string, connectOnConsent: boolean): Promise<MemoryOAuthClientProvider> {
  const auth = new MemoryOAuthClientProvider(callback.url, "sdk e2e");
  const url = new URL(qs.demoUrl);
  await assert.rejects(new Client({ name: "sdk-e2e", version: "1" }).connect(new StreamableHTTPClientTransport(url, { authProvider: auth })), UnauthorizedError);
  await walk(page, auth.authorizationUrl!.href, {
    gatewayUser: user,
    upstreamAccount: `${user}-notes`,
    upstreamOrigin: qs.demo.origin,
    connectOnConsent,
    until: (u) => u.href.startsWith(callback.url),
  });
  const code = callback.code();
  assert.ok(code, "the gateway sent an authorization code to the client");
  await new StreamableHTTPClientTransport(url, { authProvider: auth }).finishAuth(code);
  return auth;
}

function client(auth: MemoryOAuthClientProvider) {
  const transport = new StreamableHTTPClientTransport(new URL(qs.demoUrl), { authProvider: auth });
  const c = new Client({ name: "sdk-e2e", version: "1" }, { capabilities: { elicitation: { url: {} } } });
  // `notifications/elicitation/complete` as they arrive, and a wait for one id.
  const completed: string[] = [];
  const waiting = new Map<string, () => void>();
  c.setNotificationHandler(ElicitationCompleteNotificationSchema, (n) => {
    completed.push(n.params.elicitationId);
    waiting.get(n.params.elicitationId)?.();
  });
  const completion = (id: string) => (completed.includes(id) ? Promise.resolve() : new Promise<void>((r) => waiting.set(id, r)));
  return { c, transport, connect: () => c.connect(transport), completed, completion };
}

async function whoami(c: Client): Promise<string> {
  const r = (await c.callTool({ name: "whoami", arguments: {} })) as { content: Array<{ text?: string }> };
  return r.content.map((x) => x.text ?? "").join("");
}

/** The connect-required error of `fn`: its link and elicitation id; the link must be in the message too. */
async function connectElicitation(fn: () => Promise<unknown>): Promise<{ url: string; id: string }> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof McpError, String(err));
    assert.equal(err.code, -32042);
    const e = (err.data as { elicitations: Array<{ url: string; elicitationId: string }> }).elicitations[0]!;
    assert.ok(err.message.includes(e.url), `the link is in the message: ${err.message}`);
    return { url: e.url, id: e.elicitationId };
  }
  assert.fail("expected connect-required");
}


test("SDK client: sign in, connect Demo Notes on the consent page, whoami is the connected account", { skip, timeout: 60_000 }, async () => {
  const { page, close } = await newPage(browser);
  try {
    const auth = await signIn(page, "alice", true);
    const { c, connect } = client(auth);
    await connect();
    assert.ok((await c.listTools()).tools.some((t) => t.name === "whoami"));
    assert.equal(await whoami(c), "alice-notes");
    await c.close();
  } finally {
    await close();
  }
});

test("SDK client without a connection: initialize succeeds, the list asks to connect, the same session works once connected", { skip, timeout: 60_000 }, async () => {
  const { page, close } = await newPage(browser);
  try {
    // The setup page approves only with Demo Notes connected; the connection then goes away.
    const auth = await signIn(page, "bob", true);
    await page.goto(`${qs.gw.url}/__tollgate/connections`);
    await Promise.all([page.waitForURL(/connections/), page.click("button[value='disconnect:demo']")]);
    assert.match((await page.textContent("body")) ?? "", /Disconnected/);
    const { c, transport, connect, completed, completion } = client(auth);
    await connect();
    const sid = transport.sessionId;
    assert.ok(sid, "the gateway gave the client a session");
    assert.match(c.getInstructions() ?? "", /Demo Notes is not connected/);
    const { url: link, id } = await connectElicitation(() => c.listTools());
    await walk(page, link, {
      gatewayUser: "bob",
      upstreamAccount: "bob-notes",
      upstreamOrigin: qs.demo.origin,
      connectOnConsent: false,
      until: async (_u, p) => /is connected/.test((await p.textContent("h1")) ?? ""),
    });
    // The client learns that the connection is made without trying again.
    await completion(id);
    assert.deepEqual(completed, [id]);
    assert.ok((await c.listTools()).tools.some((t) => t.name === "whoami"));
    assert.equal(await whoami(c), "bob-notes");
    assert.equal(transport.sessionId, sid, "same session id throughout");
    await c.close();
  } finally {
    await close();
  }
});

test("a disconnect mid-session: the next tools/call asks to connect (link in the message), the client stays up, the same session works after connecting", { skip, timeout: 60_000 }, async () => {
  const { page, close } = await newPage(browser);
  try {
    const auth = await signIn(page, "carol", true);
    const { c, transport, connect, completion } = client(auth);
    await connect();
    const sid = transport.sessionId;
    assert.equal(await whoami(c), "carol-notes");

    await page.goto(`${qs.gw.url}/__tollgate/connections`);
    await Promise.all([page.waitForURL(/connections/), page.click("button[value='disconnect:demo']")]);
    assert.match((await page.textContent("body")) ?? "", /Disconnected/);

    const { url: link, id } = await connectElicitation(() => whoami(c));
    await c.ping(); // still up: the gateway answers for the session
    await walk(page, link, {
      gatewayUser: "carol",
      upstreamAccount: "carol-notes",
      upstreamOrigin: qs.demo.origin,
      connectOnConsent: false,
      until: async (_u, p) => /is connected/.test((await p.textContent("h1")) ?? ""),
    });
    await completion(id); // on the upstream's GET stream, which stayed open
    assert.equal(await whoami(c), "carol-notes");
    assert.equal(transport.sessionId, sid, "same session id throughout");
    await c.close();
  } finally {
    await close();
  }
});
