/**
 * `private_key_jwt` client authentication (RFC 7523 §2.2) of cross-app access against a real
 * `oidc-provider` resource authorization server: one client per algorithm family (RSA, EC),
 * each presenting an ID-JAG signed by the IdP fixture's key.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as oauth from "oauth4webapi";
import { exportJWK, exportPKCS8, generateKeyPair } from "jose";
import { prepareClientAuth, type ClientAuthConfig } from "../../src/oauth/client-auth.js";
import { requestOptions } from "../../src/oauth/flow.js";
import { createGuardedFetch } from "../../src/oauth/ssrf.js";
import { startIdJagIdp, type IdJagIdp } from "../fixtures/id-jag-idp.js";
import { JWT_BEARER, startResourceAs, type TestResourceAs } from "../fixtures/id-jag-resource-as.js";

const ALGS = ["RS256", "RS512", "ES256", "ES384"] as const;

describe("cross-app access: private_key_jwt at the resource AS", () => {
  let idp: IdJagIdp;
  let ras: TestResourceAs;
  const keys = new Map<string, { pem: string; kid: string }>();
  const fetch = createGuardedFetch({ allowPrivate: true, allowedHosts: [] });

  before(async () => {
    idp = await startIdJagIdp({ resourceClients: () => ({}) });
    // The IdP serves its JWKS once it has a client.
    idp.addClient({ clientId: "unused", clientSecret: "unused-secret", redirectUris: ["http://127.0.0.1/unused"] });
    const clients = [];
    for (const alg of ALGS) {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      const kid = `key-${alg}`;
      keys.set(alg, { pem: await exportPKCS8(privateKey), kid });
      clients.push({ clientId: `client-${alg}`, tokenEndpointAuthMethod: "private_key_jwt" as const, jwks: [{ ...(await exportJWK(publicKey)), kid, alg }] });
    }
    ras = await startResourceAs({ idp, clients });
  });
  after(async () => {
    await fetch.close();
    await ras?.close();
    await idp?.close();
  });

  async function grant(cfg: ClientAuthConfig): Promise<Response> {
    const { client, auth } = await prepareClientAuth(cfg);
    const as: oauth.AuthorizationServer = { issuer: ras.issuer, token_endpoint: ras.tokenUrl };
    const assertion = await idp.sign({ sub: "alice", aud: ras.issuer, client_id: cfg.clientId, tenant: "acme" });
    return oauth.genericTokenEndpointRequest(as, client, auth, JWT_BEARER, { assertion }, requestOptions(fetch, ras.tokenUrl));
  }

  for (const alg of ALGS) {
    test(`${alg}: the signed client assertion authenticates the gateway`, async () => {
      const k = keys.get(alg)!;
      const res = await grant({ method: "private_key_jwt", clientId: `client-${alg}`, privateKeyPem: k.pem, algorithm: alg, keyId: k.kid, expiresInSeconds: 120 });
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(await ras.accountOf(String(body.access_token)), "alice");
    });
  }

  test("a key the resource AS does not know is refused with invalid_client", async () => {
    const other = await generateKeyPair("ES256", { extractable: true });
    const res = await grant({ method: "private_key_jwt", clientId: "client-ES256", privateKeyPem: await exportPKCS8(other.privateKey), algorithm: "ES256", keyId: "key-ES256", expiresInSeconds: 300 });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: string }).error, "invalid_client");
  });

  test("a PEM that is no key for the algorithm stops start-up without echoing the key", async () => {
    const k = keys.get("RS256")!;
    await assert.rejects(
      prepareClientAuth({ method: "private_key_jwt", clientId: "c", privateKeyPem: k.pem, algorithm: "ES256", expiresInSeconds: 300 }),
      (err: Error) => /not a PKCS#8 PEM private key usable with ES256/.test(err.message) && !err.message.includes("PRIVATE KEY"),
    );
  });
});
