/**
 * `private_key_jwt` for a manually registered upstream client (`clientRegistration` `manual`,
 * `tokenEndpointAuthMethod: "private_key_jwt"`): the demo upstream's authorization server
 * (oidc-provider) knows the client by its public key only; the gateway signs a client assertion
 * for the code exchange and for every refresh. One algorithm of each family: RSA, RSA-PSS, EC.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { exportJWK, exportPKCS8, generateKeyPair } from "jose";
import { connectUser, startIdentity, startScenario, whoami, type Identity } from "./upstream-oauth-kit.js";

let identity: Identity;
before(async () => {
  identity = await startIdentity();
});
after(async () => {
  await identity.close();
});

const CLIENT_ID = "tollgate-signed";

/** A key pair for `alg`: the PKCS#8 PEM (for the gateway) and the public JWK (for the upstream). */
async function keyPair(alg: string, kid: string) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { pem: await exportPKCS8(privateKey), jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

for (const alg of ["RS384", "PS256", "ES256"] as const) {
  test(`${alg}: the code exchange and the refresh authenticate with a signed client assertion`, async () => {
    const kid = `kid-${alg}`;
    const key = await keyPair(alg, kid);
    // The PEM as a one-line environment variable (literal \n), as deployments keep it.
    const onelinePem = key.pem.trim().replace(/\n/g, "\\n");
    const s = await startScenario(
      identity,
      { registration: { dcr: false, cimd: false } },
      {
        clientRegistration: {
          mode: "manual",
          clientId: CLIENT_ID,
          tokenEndpointAuthMethod: "private_key_jwt",
          privateKeyPem: "$env(NOTES_PRIVATE_KEY)",
          algorithm: alg,
          keyId: kid,
          expiresInSeconds: 60,
        },
      },
      { env: { NOTES_PRIVATE_KEY: onelinePem } },
    );
    try {
      s.upstream.addClient({
        clientId: CLIENT_ID,
        tokenEndpointAuthMethod: "private_key_jwt",
        jwks: [key.jwk],
        redirectUris: [`${s.gw.url}/__tollgate/auth/connections/notes/callback`],
      });
      const c = await connectUser(s, identity, "alice");
      try {
        assert.equal(await whoami(c.client), "alice");
        const code = s.upstream.tokenRequestLog.find((r) => r.grantType === "authorization_code");
        assert.equal(code?.status, 200);
        assert.equal(code?.clientAuth, "private_key_jwt");
        // An expired upstream token is refreshed with a fresh assertion.
        assert.ok(s.upstream.expireAccessTokens("alice") > 0);
        assert.equal(await whoami(c.client), "alice");
        const refresh = s.upstream.tokenRequestLog.filter((r) => r.grantType === "refresh_token");
        assert.equal(refresh.length, 1);
        assert.equal(refresh[0]!.status, 200);
        assert.equal(refresh[0]!.clientAuth, "private_key_jwt");
      } finally {
        await c.close();
      }
      const logs = s.gw.logs.join("\n");
      assert.ok(!logs.includes("PRIVATE KEY"), "the key is never logged");
      assert.doesNotMatch(logs, /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./, "no assertion is logged");
    } finally {
      await s.close();
    }
  });
}

test("a key the upstream does not know: the code exchange is refused, the user sees the failure", async () => {
  const registered = await keyPair("ES256", "registered");
  const other = await keyPair("ES256", "registered");
  const s = await startScenario(
    identity,
    { registration: { dcr: false, cimd: false } },
    { clientRegistration: { mode: "manual", clientId: CLIENT_ID, tokenEndpointAuthMethod: "private_key_jwt", privateKeyPem: "$env(NOTES_PRIVATE_KEY)", algorithm: "ES256", keyId: "registered" } },
    { env: { NOTES_PRIVATE_KEY: other.pem } },
  );
  try {
    s.upstream.addClient({ clientId: CLIENT_ID, tokenEndpointAuthMethod: "private_key_jwt", jwks: [registered.jwk], redirectUris: [`${s.gw.url}/__tollgate/auth/connections/notes/callback`] });
    await assert.rejects(connectUser(s, identity, "alice"), /connect flow ended/);
    const code = s.upstream.tokenRequestLog.find((r) => r.grantType === "authorization_code");
    assert.equal(code?.clientAuth, "private_key_jwt");
    assert.equal(code?.error, "invalid_client");
  } finally {
    await s.close();
  }
});

test("a PEM that is no key for the algorithm stops start-up, naming the policy and not the key", async () => {
  const rsa = await keyPair("RS256", "k");
  await assert.rejects(
    startScenario(
      identity,
      { registration: { dcr: false, cimd: false } },
      { clientRegistration: { mode: "manual", clientId: CLIENT_ID, tokenEndpointAuthMethod: "private_key_jwt", privateKeyPem: "$env(NOTES_PRIVATE_KEY)", algorithm: "ES384" } },
      { env: { NOTES_PRIVATE_KEY: rsa.pem } },
    ),
    (err: Error) => /mcp-token-exchange-notes/.test(err.message) && /privateKeyPem is not a PKCS#8 PEM private key usable with ES384/.test(err.message) && !err.message.includes("PRIVATE KEY"),
  );
});
