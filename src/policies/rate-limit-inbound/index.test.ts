import { test } from "node:test";
import assert from "node:assert/strict";
import "./index.js";
import "../api-key-inbound/index.js";
import { rateLimitOptionsSchema } from "./options.js";
import { testClock, testGateway } from "../../../test/helpers/test-kit.js";
import { MemoryStore } from "../../store/memory.js";
import { createGateway } from "../../gateway.js";
import { testProject, testServices } from "../../../test/helpers/test-kit.js";

const KEY_A = "key-a-0123456789abcdef";
const KEY_B = "key-b-0123456789abcdef";

test("per user: the limit holds per subject, 429 problem+json with Retry-After, window resets", async () => {
  const clock = testClock(1_000_000);
  const gw = await testGateway(
    [
      {
        name: "auth",
        exportName: "ApiKeyInboundPolicy",
        options: { consumers: [{ name: "a", key: KEY_A }, { name: "b", key: KEY_B }] },
      },
      { name: "rl", exportName: "RateLimitInboundPolicy", options: { rateLimitBy: "user", requestsAllowed: 2, timeWindowMinutes: 1 } },
    ],
    [{ path: "/api", inbound: ["auth", "rl"] }],
    { clock },
  );
  const call = (key: string) =>
    gw.gateway.fetch(new Request("http://gw.test/api", { headers: { authorization: `Bearer ${key}` } }));
  try {
    assert.equal((await call(KEY_A)).status, 200);
    assert.equal((await call(KEY_A)).status, 200);
    clock.advance(20_000);
    const limited = await call(KEY_A);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "40");
    assert.equal(limited.headers.get("content-type"), "application/problem+json");
    assert.equal(((await limited.json()) as { code: string }).code, "rate_limited");
    assert.equal((await call(KEY_B)).status, 200, "another user has their own budget");
    clock.advance(40_000);
    assert.equal((await call(KEY_A)).status, 200, "new window");
  } finally {
    await gw.close();
  }
});

test("per IP uses the peer address; 'all' shares one counter; headerMode none", async () => {
  const gw = await testGateway(
    [
      { name: "ip", exportName: "RateLimitInboundPolicy", options: { rateLimitBy: "ip", requestsAllowed: 1, timeWindowMinutes: 1 } },
      { name: "all", exportName: "RateLimitInboundPolicy", options: { rateLimitBy: "all", requestsAllowed: 2, timeWindowMinutes: 1, headerMode: "none" } },
    ],
    [
      { path: "/ip", inbound: ["ip"] },
      { path: "/all", inbound: ["all"] },
    ],
  );
  const call = (path: string, remoteAddress: string) =>
    gw.gateway.fetch(new Request(`http://gw.test${path}`), { remoteAddress });
  try {
    assert.equal((await call("/ip", "10.0.0.1")).status, 200);
    assert.equal((await call("/ip", "::ffff:10.0.0.1")).status, 429, "IPv4-mapped address is the same client");
    assert.equal((await call("/ip", "10.0.0.2")).status, 200);
    assert.equal((await call("/all", "10.0.0.1")).status, 200);
    assert.equal((await call("/all", "10.0.0.2")).status, 200);
    const limited = await call("/all", "10.0.0.3");
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), null);
  } finally {
    await gw.close();
  }
});

test("two gateways on one store enforce one limit", async () => {
  const clock = testClock();
  const store = new MemoryStore({ now: clock.now });
  const policies = [{ name: "rl", exportName: "RateLimitInboundPolicy", options: { rateLimitBy: "all", requestsAllowed: 3, timeWindowMinutes: 1 } }];
  const routes = [{ path: "/api", inbound: ["rl"] }];
  const s1 = testServices({ clock, store });
  const s2 = testServices({ clock, store });
  const g1 = await createGateway(testProject(policies, routes), s1);
  const g2 = await createGateway(testProject(policies, routes), s2);
  try {
    const statuses: number[] = [];
    for (const g of [g1, g2, g1, g2]) statuses.push((await g.fetch(new Request("http://gw.test/api"))).status);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
  } finally {
    await s1.close();
    await s2.dispatcher.close();
  }
});

test("store failure: allowed by default, 503 with throwOnFailure", async () => {
  const store = new MemoryStore();
  await store.close(); // every call now throws
  for (const [throwOnFailure, status] of [[false, 200], [true, 503]] as const) {
    const gw = await testGateway(
      [{ name: "rl", exportName: "RateLimitInboundPolicy", options: { rateLimitBy: "all", requestsAllowed: 1, timeWindowMinutes: 1, throwOnFailure } }],
      [{ path: "/api", inbound: ["rl"] }],
      { store },
    );
    try {
      assert.equal((await gw.gateway.fetch(new Request("http://gw.test/api"))).status, status);
    } finally {
      await gw.gateway.close();
      await gw.services.dispatcher.close();
    }
  }
});

test("options validation", () => {
  assert.equal(rateLimitOptionsSchema.safeParse({ rateLimitBy: "function", requestsAllowed: 1, timeWindowMinutes: 1 }).success, false);
  assert.equal(rateLimitOptionsSchema.safeParse({ rateLimitBy: "ip", requestsAllowed: 0, timeWindowMinutes: 1 }).success, false);
  assert.equal(rateLimitOptionsSchema.safeParse({ rateLimitBy: "ip", requestsAllowed: 1, timeWindowMinutes: 0 }).success, false);
  assert.equal(rateLimitOptionsSchema.parse({ rateLimitBy: "ip", requestsAllowed: 1, timeWindowMinutes: 0.5 }).headerMode, "retry-after");
});
