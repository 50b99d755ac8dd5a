import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { testClock, testServices } from "../../test/helpers/test-kit.js";
import { makeKey, startJwksServer, type JwksServer, type TestKey } from "../../test/helpers/jwks-fixture.js";
import { createIdJagVerifier, resolveTrustedIssuers, subjectIdOf, type IdJagVerifier } from "./id-jag.js";

const IDP = { issuer: "https://idp.example", jwksUrl: "https://idp.example/jwks" };

test("trusted issuers: the browser login's IdP by default; explicit ones as given; clear start-up errors", () => {
  assert.deepEqual(resolveTrustedIssuers({ enabled: true }, IDP), [{ ...IDP, expectedClientIds: undefined, subjectMapping: "iss_prefix" }]);
  const two = resolveTrustedIssuers(
    { enabled: true, trustedIssuers: [{ subjectMapping: "sub_id_only", expectedClientIds: ["a"] }, { issuer: "https://other.example", jwksUrl: "https://other.example/keys", subjectMapping: "iss_tenant_prefix" }] },
    IDP,
  );
  assert.deepEqual(two.map((t) => [t.issuer, t.jwksUrl, t.subjectMapping, t.expectedClientIds]), [
    [IDP.issuer, IDP.jwksUrl, "sub_id_only", ["a"]],
    ["https://other.example", "https://other.example/keys", "iss_tenant_prefix", undefined],
  ]);
  assert.throws(() => resolveTrustedIssuers({ enabled: true }, undefined), /trustedIssuers\[0\]: give issuer and jwksUrl/);
  assert.throws(
    () => resolveTrustedIssuers({ enabled: true, trustedIssuers: [{ subjectMapping: "iss_prefix" }, { ...IDP, subjectMapping: "sub_id_only" }] }, IDP),
    /trustedIssuers\[1\]: issuer https:\/\/idp.example is listed twice/,
  );
});

test("subject mapping modes", () => {
  const c = { iss: "https://idp.example", sub: "u1", tenant: "acme corp" };
  assert.equal(subjectIdOf("iss_prefix", c), "https://idp.example#u1");
  assert.equal(subjectIdOf("iss_tenant_prefix", c), "https://idp.example#acme%20corp#u1");
  assert.equal(subjectIdOf("iss_tenant_prefix", { ...c, tenant: undefined }), undefined);
  assert.equal(subjectIdOf("sub_id_only", c), "u1");
});

describe("ID-JAG verification", () => {
  const clock = testClock();
  const services = testServices({ clock });
  const AUD = "http://gw.test/mcp/a";
  let key: TestKey;
  let jwks: JwksServer;
  let verifier: IdJagVerifier;
  let issuer: string;

  const jag = (claims: Record<string, unknown> = {}, o: { typ?: string; k?: TestKey } = {}) => {
    const now = Math.floor(clock.now() / 1000);
    const k = o.k ?? key;
    return new SignJWT({ iss: issuer, sub: "alice", aud: AUD, client_id: "agent", jti: randomUUID(), iat: now, exp: now + 300, ...claims })
      .setProtectedHeader({ alg: k.alg, kid: k.kid, typ: o.typ ?? "oauth-id-jag+jwt" })
      .sign(k.privateKey);
  };
  const expect = { clientId: "agent", audience: AUD };

  before(async () => {
    key = await makeKey("k1", "ES256");
    jwks = await startJwksServer([key]);
    issuer = new URL(jwks.url).origin;
    verifier = await createIdJagVerifier(
      services,
      [
        { issuer, jwksUrl: jwks.url, expectedClientIds: ["agent", "other-agent"], subjectMapping: "iss_prefix" },
        { issuer: `${issuer}/tenants`, jwksUrl: jwks.url, expectedClientIds: undefined, subjectMapping: "iss_tenant_prefix" },
      ],
      { authorizationDetailsTypesAllowed: ["payment_initiation"] },
    );
  });
  after(async () => {
    await verifier.close();
    await jwks.close();
    await services.close();
  });

  test("a valid assertion: the mapped subject, the configured claims, nothing else", async () => {
    const r = await verifier.verify(await jag({ email: "alice@acme.example", tenant: "acme", secret_claim: "x" }), expect);
    assert.equal(r.ok, true, JSON.stringify(r));
    if (!r.ok) return;
    assert.equal(r.issuer, issuer);
    assert.deepEqual(r.user, { sub: `${issuer}#alice`, data: { email: "alice@acme.example" } });
  });

  test("each assertion is consumed once (issuer and jti); another jti is another assertion", async () => {
    const a = await verifier.verify(await jag({ jti: "j-1" }), expect);
    assert.ok(a.ok);
    assert.equal(await verifier.consume(a), true);
    const again = await verifier.verify(await jag({ jti: "j-1" }), expect);
    assert.ok(again.ok, "a used jti still verifies; consuming it is what fails");
    assert.equal(await verifier.consume(again), false);
    const other = await verifier.verify(await jag({ jti: "j-2" }), expect);
    assert.ok(other.ok);
    assert.equal(await verifier.consume(other), true);
    const [key] = (await services.store.list("as-id-jag-jti")).map((r) => r.key);
    assert.ok(key && !key.includes("j-1"), "only a hash is stored");
  });

  for (const [name, make, error, reason] of [
    ["another typ", () => jag({}, { typ: "JWT" }), "invalid_grant", "claim_typ"],
    ["no typ at all", () => jag({}, { typ: "" }), "invalid_grant", "claim_typ"],
    ["issued in the future", () => jag({ iat: Math.floor(clock.now() / 1000) + 120, exp: Math.floor(clock.now() / 1000) + 400 }), "invalid_grant", "iat_in_future"],
    ["no jti", () => jag({ jti: undefined }), "invalid_grant", "claim_jti"],
    ["expired beyond the skew", () => jag({ iat: Math.floor(clock.now() / 1000) - 400, exp: Math.floor(clock.now() / 1000) - 31 }), "invalid_grant", "expired"],
    ["another audience", () => jag({ aud: "http://gw.test/mcp/b" }), "invalid_grant", "wrong_audience"],
    ["another client's", () => jag({ client_id: "other-agent" }), "invalid_grant", "client_mismatch"],
    ["an authorization_details type not allowed", () => jag({ authorization_details: [{ type: "account_information" }] }), "invalid_authorization_details", "authorization_details"],
    ["malformed authorization_details", () => jag({ authorization_details: { type: "payment_initiation" } }), "invalid_authorization_details", "authorization_details"],
    ["an untrusted issuer", () => jag({ iss: "https://evil.example" }), "invalid_grant", "untrusted_issuer"],
    ["iss_tenant_prefix without tenant", () => jag({ iss: `${issuer}/tenants` }), "invalid_grant", "no_tenant"],
  ] as const) {
    test(`refused: ${name}`, async () => {
      const r = await verifier.verify(await make(), expect);
      assert.deepEqual(r.ok ? "accepted" : [r.error, r.reason, r.status], [error, reason, 400]);
    });
  }

  test("accepted: expired within the clock skew; an allowed authorization_details type; a tenant", async () => {
    const now = Math.floor(clock.now() / 1000);
    assert.equal((await verifier.verify(await jag({ iat: now - 300, exp: now - 10 }), expect)).ok, true);
    const details = [{ type: "payment_initiation", amount: "10" }];
    const r = await verifier.verify(await jag({ authorization_details: details }), expect);
    assert.deepEqual(r.ok && r.user.data.authorization_details, details);
    const t = await verifier.verify(await jag({ iss: `${issuer}/tenants`, tenant: "globex" }), expect);
    assert.equal(t.ok && t.user.sub, `${issuer}/tenants#globex#alice`);
  });

  test("an untrusted issuer's assertion fetches no keys", async () => {
    const hits = jwks.hits();
    const r = await verifier.verify(await jag({ iss: "https://evil.example" }), expect);
    assert.equal(r.ok, false);
    assert.equal(jwks.hits(), hits);
  });

  test("a client outside expectedClientIds is unauthorized_client", async () => {
    const r = await verifier.verify(await jag({ client_id: "stranger" }), { clientId: "stranger", audience: AUD });
    assert.deepEqual(r.ok ? "accepted" : [r.error, r.reason], ["unauthorized_client", "client_not_expected"]);
  });

  test("a key the issuer does not publish is refused; keys that cannot be fetched are a 503", async () => {
    const stranger = await makeKey("k1", "ES256");
    const r = await verifier.verify(await jag({}, { k: stranger }), expect);
    assert.deepEqual(r.ok ? "accepted" : [r.error, r.status], ["invalid_grant", 400]);
    const fresh = await createIdJagVerifier(services, [{ issuer, jwksUrl: jwks.url, expectedClientIds: undefined, subjectMapping: "iss_prefix" }], {});
    jwks.fail(true);
    try {
      const d = await fresh.verify(await jag(), expect);
      assert.deepEqual(d.ok ? "accepted" : [d.error, d.status], ["temporarily_unavailable", 503]);
    } finally {
      jwks.fail(false);
      await fresh.close();
    }
  });
});
