/**
 * `shared-oauth`: one grant for the whole upstream, connected by an administrator on
 * `<basePath>/admin/connections`; until then every user gets `admin_connect_required` (no link).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { mainForm, TestBrowser } from "../fixtures/oauth-upstream.js";
import { sdkClient, startIdentity, startScenario, whoami, type Identity, type Scenario } from "./upstream-oauth-kit.js";

let identity: Identity;
let s: Scenario;
before(async () => {
  identity = await startIdentity();
  s = await startScenario(identity, {}, { authMode: "shared-oauth", displayName: "Team Notes" }, { settings: { adminSubjects: ["root"] } });
});
after(async () => {
  await s?.close();
  await identity?.close();
});

async function adminConnectRequired(user: string): Promise<McpError> {
  const c = sdkClient(s.gw.url, await identity.token(user));
  try {
    await c.connect();
    await c.client.callTool({ name: "whoami", arguments: {} });
  } catch (err) {
    assert.ok(err instanceof McpError);
    return err;
  } finally {
    await c.close();
  }
  assert.fail("expected admin_connect_required");
}

test("before an administrator connects, users get admin_connect_required without a link", async () => {
  const err = await adminConnectRequired("alice");
  assert.equal(err.code, -32042);
  assert.match(err.message, /administrator/);
  assert.deepEqual((err.data as { elicitations: unknown[] }).elicitations, []);
  assert.ok(!err.message.includes("http"), "no connect link for users");
});

test("non-administrators cannot open the admin page", async () => {
  const browser = new TestBrowser();
  const page = await browser.walk(`${s.gw.url}/__tollgate/admin/connections`, { values: () => ({ username: "alice" }) });
  assert.equal(page.status, 403);
});

test("an administrator connects; every user then runs as the shared account; reset undoes it", async () => {
  const admin = new TestBrowser();
  const login = await admin.open(`${s.gw.url}/__tollgate/admin/connections`);
  const page = await admin.submit(login, { username: "root" });
  assert.equal(page.status, 200);
  assert.match(page.text, /Team Notes/);
  const connect = mainForm(page)!.buttons.find((b) => b.value === "connect:notes");
  assert.ok(connect, "a Connect button");
  let done = await admin.submit(page, {}, { button: connect });
  // The upstream's login page: sign in as the service account.
  done = await admin.submit(done, { username: "svc-team" });
  assert.equal(done.status, 200, done.text.slice(0, 500));
  assert.match(done.text, /Team Notes is connected/);

  for (const user of ["alice", "bob"]) {
    const c = sdkClient(s.gw.url, await identity.token(user));
    await c.connect();
    assert.equal(await whoami(c.client), "svc-team");
    await c.close();
  }
  const list = await admin.open(`${s.gw.url}/__tollgate/admin/connections`);
  assert.match(list.text, /connected/);
  assert.match(list.text, /by root/);
  const reset = mainForm(list)!.buttons.find((b) => b.value === "reset:notes")!;
  const after = await admin.submit(list, {}, { button: reset });
  assert.match(after.text, /Connection reset/);
  const err = await adminConnectRequired("alice");
  assert.equal(err.code, -32042);
  assert.ok(s.gw.logs.some((l) => l.includes('"event":"mcp_auth_upstream_connection_established"') && l.includes('"upstreamAuthMode":"shared"')));
});
