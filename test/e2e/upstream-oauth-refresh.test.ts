/**
 * Using and recovering upstream grants against a real authorization server whose refresh tokens
 * rotate on every use: single-flight refresh under concurrency (after an upstream 401, and
 * proactively near expiry), revocation at the upstream (reconsent), token endpoint outages
 * (grant kept, 502), and restarts on SQLite (grants survive; no raw token in the file or logs).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { upstreamOAuthState } from "../../src/oauth/registry.js";
import { generateKey } from "../../src/store/crypto.js";
import { createStore } from "../../src/store/index.js";
import { connectUser, expectConnectRequired, sdkClient, startIdentity, startScenario, whoami, type Identity } from "./upstream-oauth-kit.js";

let identity: Identity;
before(async () => {
  identity = await startIdentity();
});
after(async () => {
  await identity.close();
});

test("20 concurrent calls when the upstream token has expired: exactly one refresh, none fail; rotation kept", async () => {
  const s = await startScenario(identity, { accessTokenTtlSeconds: 600 });
  try {
    const c = await connectUser(s, identity, "alice");
    try {
      for (let round = 1; round <= 2; round++) {
        assert.ok(s.upstream.expireAccessTokens("alice") > 0);
        const results = await Promise.all(Array.from({ length: 20 }, () => whoami(c.client)));
        assert.deepEqual(new Set(results), new Set(["alice"]));
        // Round 2 only works if round 1 stored the rotated refresh token.
        assert.equal(s.upstream.tokenRequests.refresh_token, round, `refreshes after round ${round}`);
      }
      assert.ok(s.upstream.tokenRequestLog.filter((r) => r.grantType === "refresh_token").every((r) => r.status === 200 && r.resource === s.upstream.mcpUrl));
    } finally {
      await c.close();
    }
  } finally {
    await s.close();
  }
});

test("tokens that live for seconds are refreshed proactively, once, before they expire", async () => {
  const s = await startScenario(identity, { accessTokenTtlSeconds: 8 });
  const realNow = s.gw.services.now;
  try {
    const c = await connectUser(s, identity, "bob");
    try {
      assert.equal(s.upstream.tokenRequests.refresh_token ?? 0, 0);
      // Move the gateway's clock 5 s ahead: the 8 s token is now inside its refresh window.
      const old = s.upstream.seenAuthorizations.at(-1);
      const mark = s.upstream.seenAuthorizations.length;
      s.gw.services.now = () => realNow() + 5_000;
      const results = await Promise.all(Array.from({ length: 20 }, () => whoami(c.client)));
      assert.deepEqual(new Set(results), new Set(["bob"]));
      assert.equal(s.upstream.tokenRequests.refresh_token, 1);
      const after = new Set(s.upstream.seenAuthorizations.slice(mark));
      assert.equal(after.size, 1, "every call used the one refreshed token (no upstream 401 round)");
      assert.ok(!after.has(old!));
    } finally {
      await c.close();
    }
  } finally {
    s.gw.services.now = realNow;
    await s.close();
  }
});

test("a grant revoked at the upstream asks the user to reconnect (reconsent_required)", async () => {
  const s = await startScenario(identity, {});
  try {
    const c = await connectUser(s, identity, "carol");
    try {
      assert.ok((await s.upstream.revokeAll("carol")) > 0);
      const msg = await c.client.callTool({ name: "whoami", arguments: {} }).then(
        () => assert.fail("expected connect-required"),
        (err: Error) => err.message,
      );
      assert.match(msg, /expired or was revoked/);
      assert.ok(s.gw.logs.some((l) => l.includes('"event":"mcp_auth_upstream_reconsent_required"')));
      assert.equal(await upstreamOAuthState(s.gw.services).grants.read("notes:user:carol"), undefined);
      // It stays "reconnect" (not "connect") until the user connects again, with a fresh link.
      const second = await c.client.callTool({ name: "whoami", arguments: {} }).then(
        () => assert.fail("expected connect-required"),
        (err: Error) => err.message,
      );
      assert.match(second, /expired or was revoked/);
      const url = await expectConnectRequired(() => c.client.callTool({ name: "whoami", arguments: {} }));
      assert.match(url, /\/auth\/connections\/notes\/connect\?redirect=true&operationId=[^&]+&browserTicket=/);
    } finally {
      await c.close();
    }
    const again = await connectUser(s, identity, "carol");
    assert.equal(await whoami(again.client), "carol");
    await again.close();
  } finally {
    await s.close();
  }
});

test("token endpoint outage: 502 with a clear message, grant kept, works again afterwards", async () => {
  const s = await startScenario(identity, {});
  try {
    const c = await connectUser(s, identity, "dave");
    try {
      s.upstream.expireAccessTokens("dave");
      s.upstream.setTokenEndpointDown(true);
      await assert.rejects(whoami(c.client), (err: Error) => /502|unavailable/i.test(err.message));
      assert.ok(await upstreamOAuthState(s.gw.services).grants.read("notes:user:dave"), "grant kept");
      s.upstream.setTokenEndpointDown(false);
      assert.equal(await whoami(c.client), "dave");
    } finally {
      await c.close();
    }
  } finally {
    await s.close();
  }
});

test("restart on SQLite keeps grants; raw tokens are never in the database file or the logs", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-grants-"));
  const file = path.join(dir, "data.db");
  const env = { TOLLGATE_ENCRYPTION_KEY: generateKey() };
  let store = await createStore(`sqlite:${file}`);
  let s = await startScenario(identity, {}, {}, { env, store });
  const upstream = s.upstream;
  const logs: string[] = [];
  try {
    const c = await connectUser(s, identity, "erin");
    assert.equal(await whoami(c.client), "erin");
    await c.close();
    logs.push(...s.gw.logs);
    const grant = (await upstreamOAuthState(s.gw.services).grants.read("notes:user:erin"))!;
    const secrets = [grant.secret.accessToken, grant.secret.refreshToken!];
    await s.gw.close();
    await store.close();

    // A new gateway process on the same file and key: no new connection needed.
    store = await createStore(`sqlite:${file}`);
    const { startGateway, writeProject } = await import("../helpers/harness.js");
    const { projectFiles } = await import("./upstream-oauth-kit.js");
    const gw = await startGateway({
      projectDir: await writeProject(projectFiles(identity.jwks.url, upstream.mcpUrl)),
      env,
      store,
      settings: { devLogin: true },
    });
    s = { upstream, gw, close: async () => void (await gw.close()) };
    const again = sdkClient(gw.url, await identity.token("erin"));
    await again.connect();
    assert.equal(await whoami(again.client), "erin");
    await again.close();
    logs.push(...gw.logs);

    const seen = upstream.seenAuthorizations.map((h) => h.replace(/^Bearer /i, ""));
    const files = fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f)).toString("latin1"));
    for (const t of [...secrets, ...seen]) {
      assert.ok(t.length >= 16);
      for (const f of files) assert.ok(!f.includes(t), "raw token found in the SQLite files");
      assert.ok(!logs.join("\n").includes(t), "raw token found in the logs");
    }
  } finally {
    await s.gw.close();
    await upstream.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
