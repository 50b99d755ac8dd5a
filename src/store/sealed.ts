/**
 * The convention for secrets inside store records, shared by every module that stores token
 * material (grants, client secrets, refresh tokens):
 *
 * - the record value is a JSON object with a string field `sealed` holding a {@link SecretBox}
 *   envelope; other fields are plaintext metadata (expiry, scopes, subject) that must not be
 *   secret;
 * - the envelope's plaintext is the JSON text of the secret part;
 * - the AAD is `${ns}:${key}` — the record's own address — so an envelope copied into another
 *   record (another user, another upstream) fails to open.
 *
 * `rotateSecrets` (rotate.ts) relies on this shape to re-encrypt under the newest key.
 *
 * @see https://nvlpubs.nist.gov/nistpubs/Legacy/SP/nistspecialpublication800-38d.pdf (GCM, AAD)
 */
import { GatewayError } from "../errors.js";
import type { SecretBox } from "./crypto.js";

/** A record value carrying an encrypted part. */
export type SealedValue<M extends object = Record<string, unknown>> = M & { sealed: string };

/**
 * The AAD binding an envelope to the record at (`ns`, `key`). Namespaces may not contain `:`,
 * so the AAD names exactly one record.
 */
export function secretAad(ns: string, key: string): string {
  if (ns.includes(":")) throw new TypeError(`namespace "${ns}" of a sealed record must not contain ":"`);
  return `${ns}:${key}`;
}

/** Encrypts the JSON text of `secret` for the record at (`ns`, `key`). */
export function sealJson(box: SecretBox, ns: string, key: string, secret: unknown): string {
  const text = JSON.stringify(secret);
  if (text === undefined) throw new TypeError("sealed values must be JSON-serializable");
  return box.seal(text, secretAad(ns, key));
}

/**
 * Decrypts an envelope made by {@link sealJson} for the same (`ns`, `key`). Throws GatewayError
 * `decrypt_failed` on a wrong key, tampering, or an envelope moved from another record.
 */
export function openJson<T = unknown>(box: SecretBox, ns: string, key: string, envelope: string): T {
  const text = box.open(envelope, secretAad(ns, key));
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new GatewayError("decrypt_failed", 500, "Stored credential cannot be decrypted with the configured keys.", { cause });
  }
}

/** Builds a record value: plaintext `meta` plus the sealed `secret`. */
export function sealRecord<M extends object = Record<string, never>>(
  box: SecretBox,
  ns: string,
  key: string,
  secret: unknown,
  meta?: M,
): SealedValue<M> {
  return { ...(meta ?? ({} as M)), sealed: sealJson(box, ns, key, secret) };
}

/** Opens the secret part of a record value written by {@link sealRecord}. */
export function openRecord<T = unknown>(box: SecretBox, ns: string, key: string, value: unknown): T {
  if (!isSealedValue(value)) {
    throw new GatewayError("decrypt_failed", 500, "Stored credential cannot be decrypted with the configured keys.");
  }
  return openJson<T>(box, ns, key, value.sealed);
}

/** True when `value` follows the sealed-record convention. */
export function isSealedValue(value: unknown): value is SealedValue {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as { sealed?: unknown }).sealed === "string"
  );
}
