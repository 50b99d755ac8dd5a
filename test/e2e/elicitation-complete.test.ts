/**
 * `notifications/elicitation/complete` after a connect-required answer, with the official SDK
 * client, the demo OAuth upstream and the connect flow in the cookie-keeping test browser:
 *
 * - a session the gateway holds (signed in, never connected): its GET stream is the gateway's,
 *   the notification arrives there, and the same session then reaches the upstream;
 * - a session with an upstream session whose grant goes away: the notification is added to the
 *   upstream's GET stream, between its events;
 * - two instances on one SQLite file, and on one PostgreSQL schema: the session's stream is on
 *   one, the connect callback runs on the other, and the hand-over goes through the store.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ElicitationCompleteNotificationSchema, McpError } from "@modelcontextprotocol/sdk/types.js";
import { elicitations } from "../../src/mcp/elicitations.js";
import { generateKey } from "../../src/store/crypto.js";
import { PostgresStore } from "../../src/store/postgres.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store } from "../../src/store/types.js";
import { TestBrowser, type OAuthUpstream } from "../fixtures/oauth-upstream.js";
import { startGateway, writeProject, type RunningGateway } from "../helpers/harness.js";
import { dropSchema, findTestPostgres, uniqueSchema } from "./store-postgres-env.js";
import { connectInBrowser, connectUser, projectFiles, sdkClient, startIdentity, startScenario, whoami, type Identity, type Scenario } from "./upstream-oauth-kit.js";

let identity: Identity;
let upstream: OAuthUpstream;
let gw: RunningGateway;
let scenario: Scenario;

before(async () => {
  identity = await startIdentity();
  scenario = await startScenario(identity, {});
  ({ gw, upstream } = scenario);
});
after(async () => {
  await scenario?.close();
  await identity?.close();
});

/** Records the completion notifications a client receives. */
function listen(client: Client) {
  const seen: string[] = [];
  const waiting = new Map<string, () => void>();
  client.setNotificationHandler(ElicitationCompleteNotificationSchema, (n) => {
    seen.push(n.params.elicitationId);
    waiting.get(n.params.elicitationId)?.();
  });
  return {
    seen,
    /** Resolves once `id` has arrived (the test's timeout fails it otherwise). */
    arrival: (id: string) => (seen.includes(id) ? Promise.resolve() : new Promise<void>((resolve) => waiting.set(id, resolve))),
  };
}

/** The link and elicitation id of the connect-required error `fn` throws. */
async function elicitation(fn: () => Promise<unknown>): Promise<{ url: string; id: string }> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof McpError && err.code === -32042, String(err));
    const e = (err.data as { elicitations: Array<{ url: string; elicitationId: string }> }).elicitations[0]!;
    assert.ok(e.elicitationId && e.url);
    return { url: e.url, id: e.elicitationId };
  }
  assert.fail("expected connect-required");
}

test("a session the gateway holds: the connect completes, its GET stream gets the notification, then the same session reaches the upstream", { timeout: 60_000 }, async () => {
  const token = await identity.token("alice");
  const c = sdkClient(gw.url, token);
  const other = sdkClient(gw.url, token);
  const heard = listen(c.client);
  const otherHeard = listen(other.client);
  try {
    await c.connect();
    await other.connect();
    const sid = c.transport.sessionId;
    assert.match(sid ?? "", /^tollgate-deferred-/, "the gateway holds the session");
    const { url, id } = await elicitation(() => c.client.listTools());
    const page = await connectInBrowser(new TestBrowser(), url, "alice");
    assert.match(page.text, /is connected/);
    await heard.arrival(id);
    assert.deepEqual(heard.seen, [id]);
    assert.deepEqual(otherHeard.seen, [], "only the session that was asked hears of it");
    assert.ok((await c.client.listTools()).tools.some((t) => t.name === "whoami"));
    assert.equal(await whoami(c.client), "alice");
    assert.equal(c.transport.sessionId, sid, "same session");
    const stream = gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === "mcp_request_rejected" && l.httpMethod === "GET");
    assert.ok(stream, "the held stream is in the audit trail");
    assert.equal(stream.outcome, "success");
  } finally {
    await c.close();
    await other.close();
  }
});

test("a session with an upstream session: after a disconnect and a new connect, the notification comes on the upstream's GET stream", { timeout: 60_000 }, async () => {
  const browser = new TestBrowser();
  const first = await connectUser({ upstream, gw, close: async () => {} }, identity, "bob", browser);
  await first.close();
  const c = sdkClient(gw.url, await identity.token("bob"));
  const heard = listen(c.client);
  try {
    await c.connect();
    assert.doesNotMatch(c.transport.sessionId ?? "", /^tollgate-deferred-/, "an upstream session");
    assert.equal(await whoami(c.client), "bob");
    const page = await browser.open(`${gw.url}/__tollgate/connections`);
    const done = await browser.submit(page, {}, { button: { name: "decision", value: "disconnect:notes" } });
    assert.match(done.text, /Disconnected/);

    const { url, id } = await elicitation(() => whoami(c.client));
    const connected = await connectInBrowser(browser, url, "bob");
    assert.match(connected.text, /is connected/);
    await heard.arrival(id);
    assert.equal(await whoami(c.client), "bob");
    assert.deepEqual(heard.seen, [id]);
  } finally {
    await c.close();
  }
});

/** Instance A holds the session's stream, the connect callback runs on instance B; they share only the store. */
async function twoInstances(open: () => Promise<Store>, user: string): Promise<void> {
  const stores = [await open(), await open()];
  const env = { TOLLGATE_ENCRYPTION_KEY: generateKey() };
  const dir = await writeProject(projectFiles(identity.jwks.url, upstream.mcpUrl));
  const a = await startGateway({ projectDir: dir, env, settings: { devLogin: true }, store: stores[0] });
  const b = await startGateway({ projectDir: dir, env, settings: { devLogin: true }, store: stores[1] });
  elicitations(a.services.store).pollMs = 100; // the hand-over of instance A (its services wrap the store)
  const c = sdkClient(a.url, await identity.token(user));
  const heard = listen(c.client);
  try {
    await c.connect();
    const { url, id } = await elicitation(() => c.client.listTools());
    assert.ok(url.startsWith(a.url));
    // The same link, opened on the other instance (the ticket lives in the shared store).
    const page = await connectInBrowser(new TestBrowser(), `${b.url}${url.slice(a.url.length)}`, user);
    assert.match(page.text, /is connected/);
    await heard.arrival(id);
    assert.equal(await whoami(c.client), user);
  } finally {
    await c.close();
    await a.close();
    await b.close();
    for (const s of stores) await s.close();
  }
}

test("two instances on one SQLite file: the stream on one, the connect callback on the other", { timeout: 90_000 }, async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-elicit-"));
  try {
    // A subject with characters the store keys escape.
    await twoInstances(async () => SqliteStore.open(path.join(root, "data.db")), "carol@example.com");
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("two instances on one PostgreSQL schema: the stream on one, the connect callback on the other", { timeout: 90_000 }, async (t) => {
  const pgEnv = await findTestPostgres();
  if (!pgEnv.url) {
    if (pgEnv.required) assert.fail(pgEnv.reason);
    return t.skip(pgEnv.reason);
  }
  const url = pgEnv.url;
  const schema = uniqueSchema("elicit");
  try {
    await twoInstances(() => PostgresStore.connect(url, { schema, max: 4 }), "dave@example.org");
  } finally {
    await dropSchema(url, schema);
  }
});
