import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { GatewayError } from "../errors.js";
import { createSecretBox, generateKey, parseKeyRing } from "./crypto.js";
import { openJson, openRecord, sealJson, sealRecord, secretAad } from "./sealed.js";

const key = (id: string) => ({ id, key: randomBytes(32) });
const isDecryptFailed = (err: unknown) => err instanceof GatewayError && err.code === "decrypt_failed";

/** Flips one bit of the base64url segment `index` of an envelope. */
function flip(envelope: string, index: number): string {
  const parts = envelope.split(".");
  const bytes = Buffer.from(parts[index]!, "base64url");
  bytes[0] = bytes[0]! ^ 1;
  parts[index] = bytes.toString("base64url");
  return parts.join(".");
}

describe("SecretBox", () => {
  test("round trip; each seal uses a fresh IV", () => {
    const box = createSecretBox([key("k1")]);
    const a = box.seal("refresh-token-value", "grants:alice");
    const b = box.seal("refresh-token-value", "grants:alice");
    assert.notEqual(a, b);
    assert.match(a, /^v1\.k1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    assert.ok(!a.includes("refresh-token-value"));
    assert.equal(box.open(a, "grants:alice"), "refresh-token-value");
    assert.equal(box.open(box.seal("", "x"), "x"), "");
  });

  test("a ciphertext moved to another record (other AAD) fails", () => {
    const box = createSecretBox([key("k1")]);
    const env = box.seal("secret", "grants:alice:linear");
    assert.throws(() => box.open(env, "grants:mallory:linear"), isDecryptFailed);
    assert.throws(() => box.open(env, "grants:alice:linear "), isDecryptFailed);
  });

  test("tampering with IV, ciphertext or tag fails", () => {
    const box = createSecretBox([key("k1")]);
    const env = box.seal("some secret text", "aad");
    assert.throws(() => box.open(flip(env, 2), "aad"), isDecryptFailed, "iv");
    assert.throws(() => box.open(flip(env, 3), "aad"), isDecryptFailed, "ciphertext");
    const parts = env.split(".");
    const ct = Buffer.from(parts[3]!, "base64url");
    ct[ct.length - 1] = ct[ct.length - 1]! ^ 0x80;
    assert.throws(() => box.open([...parts.slice(0, 3), ct.toString("base64url")].join("."), "aad"), isDecryptFailed, "tag");
    assert.throws(() => box.open(env.replace("v1.", "v2."), "aad"), isDecryptFailed, "version");
    assert.throws(() => box.open("garbage", "aad"), isDecryptFailed);
  });

  test("a wrong key or an unknown key id fails", () => {
    const env = createSecretBox([key("k1")]).seal("s", "aad");
    assert.throws(() => createSecretBox([key("k1")]).open(env, "aad"), isDecryptFailed, "same id, other key");
    assert.throws(() => createSecretBox([key("k2")]).open(env, "aad"), isDecryptFailed, "unknown id");
  });

  test("key ring: reads by id, writes with the last key, marks stale envelopes", () => {
    const k1 = key("k1");
    const k2 = key("k2");
    const old = createSecretBox([k1]);
    const ring = createSecretBox([k1, k2]);
    const oldEnv = old.seal("s", "aad");
    assert.equal(ring.currentKeyId, "k2");
    assert.equal(ring.open(oldEnv, "aad"), "s");
    assert.equal(ring.isStale(oldEnv), true);
    const newEnv = ring.seal("s", "aad");
    assert.ok(newEnv.startsWith("v1.k2."));
    assert.equal(ring.isStale(newEnv), false);
    assert.throws(() => old.open(newEnv, "aad"), isDecryptFailed);
    assert.throws(() => createSecretBox([k1, { id: "k1", key: randomBytes(32) }]), /unique/);
    assert.throws(() => createSecretBox([]), /empty/);
  });

  test("deriveKey: HKDF-SHA256 of the current key, one key per label", () => {
    const k1 = key("k1");
    const k2 = key("k2");
    const box = createSecretBox([k1]);
    const a = box.deriveKey("mcp-session-binding");
    // RFC 5869 by hand: empty salt is HashLen zero bytes; one block of expand is 32 bytes.
    const prk = createHmac("sha256", Buffer.alloc(32)).update(k1.key).digest();
    const okm = createHmac("sha256", prk).update(Buffer.concat([Buffer.from("mcp-session-binding"), Buffer.from([1])])).digest();
    assert.deepEqual(a, okm);
    assert.equal(a.length, 32);
    assert.deepEqual(createSecretBox([k1]).deriveKey("mcp-session-binding"), a, "same key, same label: same subkey");
    assert.notDeepEqual(box.deriveKey("other"), a, "labels separate keys");
    assert.notDeepEqual(a, k1.key);
    assert.notDeepEqual(createSecretBox([k1, k2]).deriveKey("mcp-session-binding"), a, "derived from the current key");
    assert.deepEqual(createSecretBox([k2]).deriveKey("x"), createSecretBox([k1, k2]).deriveKey("x"));
  });

  test("parseKeyRing accepts one key or an id:key list and rejects bad input", () => {
    const a = generateKey();
    const b = generateKey();
    assert.deepEqual(parseKeyRing(a).map((k) => k.id), ["k1"]);
    const ring = parseKeyRing(`old:${a}, new:${b}`);
    assert.deepEqual(ring.map((k) => k.id), ["old", "new"]);
    assert.equal(ring[1]!.key.toString("base64"), b);
    assert.throws(() => parseKeyRing(""), /empty/);
    assert.throws(() => parseKeyRing(Buffer.alloc(16).toString("base64")), /exactly 32 bytes/);
    assert.throws(() => parseKeyRing(`bad id:${a}`), /key id/);
  });
});

describe("sealed record helpers", () => {
  test("sealJson/openJson bind JSON to ns:key", () => {
    const box = createSecretBox([key("k1")]);
    assert.equal(secretAad("grants", "u1:linear"), "grants:u1:linear");
    const env = sealJson(box, "grants", "u1:linear", { access: "a", refresh: "r" });
    assert.deepEqual(openJson(box, "grants", "u1:linear", env), { access: "a", refresh: "r" });
    assert.throws(() => openJson(box, "grants", "u2:linear", env), isDecryptFailed);
    assert.throws(() => openJson(box, "clients", "u1:linear", env), isDecryptFailed, "namespace is part of the AAD");
    // Without this rule ("a:b", "c") and ("a", "b:c") would share an AAD.
    assert.throws(() => sealJson(box, "a:b", "c", "x"), TypeError);
    assert.throws(() => sealJson(box, "ns", "k", undefined), TypeError);
  });

  test("sealRecord keeps metadata in the clear and the secret sealed", () => {
    const box = createSecretBox([key("k1")]);
    const v = sealRecord(box, "clients", "linear", { clientSecret: "cs" }, { clientId: "abc", expiresAt: 5 });
    assert.equal(v.clientId, "abc");
    assert.equal(v.expiresAt, 5);
    assert.ok(!JSON.stringify(v).includes('"cs"'));
    assert.deepEqual(openRecord(box, "clients", "linear", v), { clientSecret: "cs" });
    assert.throws(() => openRecord(box, "clients", "linear", { clientId: "abc" }), isDecryptFailed);
    assert.throws(() => openRecord(box, "clients", "linear", null), isDecryptFailed);
  });
});
