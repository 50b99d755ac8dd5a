/**
 * Client addresses behind a reverse proxy. Reproduces the finding: the gateway's client
 * registration allows 100 registrations per address and hour, and behind one proxy every
 * client had the proxy's address, so the 101st registration of anyone was refused. With the
 * proxy trusted (`TOLLGATE_TRUSTED_PROXIES`) each client counts on its own; without it, the
 * field is ignored, so no client can pick an address.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startAuthEnv, type AuthEnv } from "./auth-server-helpers.js";
import { REGISTRATIONS_PER_HOUR } from "../../src/auth-server/token-endpoint.js";

async function register(env: AuthEnv, forwardedFor?: string): Promise<number> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (forwardedFor) headers["x-forwarded-for"] = forwardedFor;
  const res = await fetch(`${env.gw.url}/__tollgate/oauth/register`, {
    method: "POST",
    headers,
    body: JSON.stringify({ client_name: "c", redirect_uris: [env.redirectUri], token_endpoint_auth_method: "none" }),
  });
  await res.arrayBuffer();
  return res.status;
}

describe("behind a trusted proxy", () => {
  let env: AuthEnv;
  before(async () => {
    env = await startAuthEnv({ devLogin: true, limits: { trustedProxies: ["127.0.0.0/8"] } });
  });
  after(async () => env?.close());

  test(`${REGISTRATIONS_PER_HOUR + 1} clients behind one proxy each register; one client is still limited`, async () => {
    for (let i = 0; i <= REGISTRATIONS_PER_HOUR; i++) {
      assert.equal(await register(env, `198.51.100.${i % 250}, 203.0.${Math.floor(i / 250)}.${i % 250}`), 201, `client ${i}`);
    }
    for (let i = 1; i < REGISTRATIONS_PER_HOUR; i++) assert.equal(await register(env, "192.0.2.7"), 201);
    assert.equal(await register(env, "192.0.2.7"), 201, `the ${REGISTRATIONS_PER_HOUR}th`);
    assert.equal(await register(env, "192.0.2.7"), 429, "the same client over the limit");
  });
});

describe("without trusted proxies (the default)", () => {
  let env: AuthEnv;
  before(async () => {
    env = await startAuthEnv({ devLogin: true });
  });
  after(async () => env?.close());

  test("X-Forwarded-For is ignored: every registration counts against the peer", async () => {
    for (let i = 0; i < REGISTRATIONS_PER_HOUR; i++) assert.equal(await register(env, `198.51.100.${i}`), 201);
    assert.equal(await register(env, "198.51.100.250"), 429);
  });
});
