import { test } from "node:test";
import assert from "node:assert/strict";
import "./index.js";
import { apiKeyOptionsSchema } from "./options.js";
import {
  addConsumer,
  API_KEY_NAMESPACE,
  findConsumer,
  generateApiKey,
  hashApiKey,
  listConsumers,
  removeConsumer,
  revokeApiKey,
} from "./consumers.js";
import { testClock, testGateway } from "../../../test/helpers/test-kit.js";
import { MemoryStore } from "../../store/memory.js";

const CONFIG_KEY = "cfg-key-0123456789abcdef";

type Body = { user: { sub: string; data: Record<string, unknown> } | null };

async function setup(extra: Record<string, unknown> = {}, clock = testClock()) {
  const store = new MemoryStore({ now: clock.now });
  const gw = await testGateway(
    [
      {
        name: "keys",
        exportName: "ApiKeyInboundPolicy",
        options: {
          consumers: [{ name: "ci-bot", key: CONFIG_KEY, metadata: { team: "infra" }, roles: ["deployer"] }],
          ...extra,
        },
      },
    ],
    [{ path: "/api", inbound: ["keys"] }],
    { clock, store },
  );
  const call = (headers: Record<string, string> = {}) => gw.gateway.fetch(new Request("http://gw.test/api", { headers }));
  return { gw, store, clock, call };
}

test("config consumer: Bearer key sets request.user", async () => {
  const { gw, call } = await setup();
  try {
    const res = await call({ authorization: `Bearer ${CONFIG_KEY}` });
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as Body).user, { sub: "ci-bot", data: { team: "infra", roles: ["deployer"] } });
  } finally {
    await gw.close();
  }
});

test("store consumer: found by hash; the store never holds the plaintext key", async () => {
  const { gw, store, call } = await setup();
  try {
    const key = generateApiKey();
    const { keyId } = await addConsumer(store, "agent-7", key, { owner: "alice" });
    assert.equal(keyId, hashApiKey(key).slice(0, 12));
    const rows = await store.list(API_KEY_NAMESPACE);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.key, hashApiKey(key));
    assert.ok(!JSON.stringify(rows).includes(key), "plaintext key is not stored");

    const res = await call({ authorization: `Bearer ${key}` });
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as Body).user, { sub: "agent-7", data: { owner: "alice" } });
    assert.equal((await findConsumer(store, key))?.name, "agent-7");
    await assert.rejects(addConsumer(store, "other", key), /already assigned/);
    await assert.rejects(addConsumer(store, "other", "short"), /at least 16/);
  } finally {
    await gw.close();
  }
});

test("missing, unknown and wrong-scheme keys answer 401 problem+json", async () => {
  const { gw, call } = await setup();
  try {
    const cases: Array<[Record<string, string>, string, string]> = [
      [{}, "missing_api_key", "Bearer"],
      [{ authorization: "Bearer nope-nope-nope-nope-nope" }, "invalid_api_key", 'Bearer error="invalid_token"'],
      [{ authorization: `Basic ${CONFIG_KEY}` }, "missing_api_key", "Bearer"],
      [{ "x-api-key": CONFIG_KEY }, "missing_api_key", "Bearer"],
    ];
    for (const [headers, code, challenge] of cases) {
      const res = await call(headers);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      assert.equal(res.headers.get("www-authenticate"), challenge);
      const body = (await res.json()) as { code: string };
      assert.equal(body.code, code);
      assert.ok(!JSON.stringify(body).includes("nope-nope"));
    }
  } finally {
    await gw.close();
  }
});

test("custom header without scheme (x-api-key)", async () => {
  const { gw, call } = await setup({ authHeader: "x-api-key", authScheme: "" });
  try {
    assert.equal((await call({ "x-api-key": CONFIG_KEY })).status, 200);
    assert.equal((await call({ authorization: `Bearer ${CONFIG_KEY}` })).status, 401);
  } finally {
    await gw.close();
  }
});

test("allowUnauthenticatedRequests lets missing and unknown keys through without a user", async () => {
  const { gw, call } = await setup({ allowUnauthenticatedRequests: true });
  try {
    for (const headers of [{}, { authorization: "Bearer unknown-unknown-unknown" }] as Array<Record<string, string>>) {
      const res = await call(headers);
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as Body).user, null);
    }
  } finally {
    await gw.close();
  }
});

test("lookups are cached for cacheTtlSeconds; revocation takes effect after the TTL", async () => {
  const { gw, store, clock, call } = await setup({ cacheTtlSeconds: 60 });
  try {
    const key = generateApiKey();
    // Unknown first: the negative entry lasts at most 5 s.
    assert.equal((await call({ authorization: `Bearer ${key}` })).status, 401);
    await addConsumer(store, "late", key);
    assert.equal((await call({ authorization: `Bearer ${key}` })).status, 401);
    clock.advance(5_001);
    assert.equal((await call({ authorization: `Bearer ${key}` })).status, 200);

    assert.equal(await revokeApiKey(store, key), true);
    assert.equal((await call({ authorization: `Bearer ${key}` })).status, 200, "still cached");
    clock.advance(60_001);
    assert.equal((await call({ authorization: `Bearer ${key}` })).status, 401);
  } finally {
    await gw.close();
  }
});

test("consumer management helpers", async () => {
  const store = new MemoryStore();
  try {
    const a1 = generateApiKey();
    const a2 = generateApiKey();
    assert.match(a1, /^tg_[A-Za-z0-9_-]{43}$/);
    await addConsumer(store, "a", a1, {}, { roles: ["r"] });
    await addConsumer(store, "a", a2);
    await addConsumer(store, "b", generateApiKey());
    const all = await listConsumers(store);
    assert.equal(all.length, 3);
    assert.ok(all.every((c) => c.keyId.length === 12 && !("key" in c)));
    assert.equal(await removeConsumer(store, "a"), 2);
    assert.deepEqual((await listConsumers(store)).map((c) => c.name), ["b"]);
  } finally {
    await store.close();
  }
});

test("options validation", () => {
  assert.equal(apiKeyOptionsSchema.safeParse({ consumers: [{ name: "x", key: "short" }] }).success, false);
  assert.equal(apiKeyOptionsSchema.safeParse({ consumers: [{ name: "x" }] }).success, false, "unset $env");
  const dup = apiKeyOptionsSchema.safeParse({
    consumers: [
      { name: "x", key: CONFIG_KEY },
      { name: "y", key: CONFIG_KEY },
    ],
  });
  assert.equal(dup.success, false);
  assert.deepEqual(dup.error?.issues[0]?.path, ["consumers", 1, "key"]);
  const ok = apiKeyOptionsSchema.parse({});
  assert.equal(ok.cacheTtlSeconds, 60);
  assert.equal(ok.allowUnauthenticatedRequests, false);
  assert.equal(ok.authScheme, "Bearer");
  assert.equal(apiKeyOptionsSchema.safeParse({ bucketName: "b" }).success, true);
});
