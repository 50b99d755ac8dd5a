/**
 * Encryption of token material at rest: AES-256-GCM with the record key as AAD, so a ciphertext
 * copied to another user's record fails to decrypt. Keys form a ring with ids; new writes use
 * the newest key, reads pick the key by the id stored in the envelope.
 *
 * Envelope format: `v1.<keyId>.<base64url iv>.<base64url ciphertext+tag>`.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { GatewayError } from "../errors.js";

export interface KeyRingKey {
  id: string;
  key: Buffer;
}

export interface SecretBox {
  /** Encrypts `plaintext`, binding it to `aad` (the record key). */
  seal(plaintext: string, aad: string): string;
  /** Decrypts; throws GatewayError `decrypt_failed` on a wrong key, tampering or moved record. */
  open(envelope: string, aad: string): string;
  /** Id of the key new writes use. */
  readonly currentKeyId: string;
  /** True when `envelope` was sealed with an older key (candidate for re-encryption). */
  isStale(envelope: string): boolean;
  /**
   * A 32-byte subkey for another purpose (e.g. MAC keys), derived with HKDF-SHA256 from the
   * CURRENT key with `label` as info. Different labels give independent keys; rotating the
   * current key changes every derived key.
   *
   * @see https://www.rfc-editor.org/rfc/rfc5869 HKDF
   */
  deriveKey(label: string): Buffer;
}

/**
 * Parses `TOLLGATE_ENCRYPTION_KEY`: either one base64 32-byte key (id `k1`), or a ring
 * `id1:base64,id2:base64` whose LAST entry is the current key.
 */
export function parseKeyRing(spec: string): KeyRingKey[] {
  const parts = spec.split(",").map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new Error("TOLLGATE_ENCRYPTION_KEY is empty");
  return parts.map((part, i) => {
    const colon = part.indexOf(":");
    const id = colon > 0 ? part.slice(0, colon) : `k${i + 1}`;
    const b64 = colon > 0 ? part.slice(colon + 1) : part;
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(id)) throw new Error(`encryption key id "${id}" must be 1-32 of [A-Za-z0-9_-]`);
    const key = Buffer.from(b64, "base64");
    if (key.length !== 32) throw new Error(`encryption key "${id}" must be base64 of exactly 32 bytes (got ${key.length})`);
    return { id, key };
  });
}

/** Builds a SecretBox over a key ring (last key is current). */
export function createSecretBox(ring: KeyRingKey[]): SecretBox {
  if (ring.length === 0) throw new Error("key ring is empty");
  const byId = new Map(ring.map((k) => [k.id, k.key]));
  if (byId.size !== ring.length) throw new Error("encryption key ids must be unique");
  const current = ring[ring.length - 1]!;
  return {
    currentKeyId: current.id,
    seal(plaintext, aad) {
      const iv = randomBytes(12);
      const c = createCipheriv("aes-256-gcm", current.key, iv);
      c.setAAD(Buffer.from(aad, "utf8"));
      const ct = Buffer.concat([c.update(plaintext, "utf8"), c.final(), c.getAuthTag()]);
      return `v1.${current.id}.${iv.toString("base64url")}.${ct.toString("base64url")}`;
    },
    open(envelope, aad) {
      const [v, id, ivB64, ctB64] = envelope.split(".");
      const key = id === undefined ? undefined : byId.get(id);
      if (v !== "v1" || !key || !ivB64 || !ctB64) {
        throw new GatewayError("decrypt_failed", 500, "Stored credential cannot be decrypted with the configured keys.");
      }
      try {
        const all = Buffer.from(ctB64, "base64url");
        const d = createDecipheriv("aes-256-gcm", key, Buffer.from(ivB64, "base64url"));
        d.setAAD(Buffer.from(aad, "utf8"));
        d.setAuthTag(all.subarray(all.length - 16));
        return Buffer.concat([d.update(all.subarray(0, all.length - 16)), d.final()]).toString("utf8");
      } catch (cause) {
        throw new GatewayError("decrypt_failed", 500, "Stored credential cannot be decrypted with the configured keys.", { cause });
      }
    },
    isStale(envelope) {
      return envelope.split(".")[1] !== current.id;
    },
    deriveKey(label) {
      return Buffer.from(hkdfSync("sha256", current.key, Buffer.alloc(0), Buffer.from(label, "utf8"), 32));
    },
  };
}

/** A fresh random key, base64 (for dev auto-generation and `tollgate keys generate`). */
export function generateKey(): string {
  return randomBytes(32).toString("base64");
}
