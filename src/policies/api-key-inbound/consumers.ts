/**
 * API key consumers kept in the store. Only the SHA-256 of a key is ever stored (as the record
 * key), so a store dump does not reveal usable keys. API keys are high-entropy random strings,
 * so a fast unsalted hash is enough here (unlike passwords).
 *
 * Used by `api-key-inbound` to authenticate and by `tollgate consumers …` to manage keys.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Store } from "../../store/types.js";

/** Store namespace of consumer records; record key = hex SHA-256 of the API key. */
export const API_KEY_NAMESPACE = "api-key-consumers";

/** Shortest API key accepted (shorter keys are guessable). */
export const MIN_API_KEY_LENGTH = 16;

/** What the store holds per key. */
export interface StoredConsumer {
  name: string;
  metadata: Record<string, unknown>;
  roles?: string[];
  createdAt: number;
}

/** Hex SHA-256 of an API key. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** A new random API key: `tg_` plus 32 random bytes, base64url (prefix helps secret scanners). */
export function generateApiKey(): string {
  return `tg_${randomBytes(32).toString("base64url")}`;
}

/**
 * Stores a consumer for `key`. A consumer may hold several keys (rotate by adding the new key,
 * then revoking the old one). Throws when the key is too short or already assigned.
 */
export async function addConsumer(
  store: Store,
  name: string,
  key: string,
  metadata: Record<string, unknown> = {},
  opts: { roles?: string[]; now?: number } = {},
): Promise<{ keyId: string }> {
  if (name.trim() === "") throw new Error("consumer name must not be empty");
  if (key.length < MIN_API_KEY_LENGTH) throw new Error(`API keys must be at least ${MIN_API_KEY_LENGTH} characters`);
  const keyHash = hashApiKey(key);
  const record: StoredConsumer = { name, metadata, createdAt: opts.now ?? Date.now() };
  if (opts.roles) record.roles = opts.roles;
  const version = await store.put(API_KEY_NAMESPACE, keyHash, record, { ifVersion: 0 });
  if (version === undefined) throw new Error("this API key is already assigned to a consumer");
  return { keyId: keyId(keyHash) };
}

/** The consumer owning `key`, if any. */
export async function findConsumer(store: Store, key: string): Promise<StoredConsumer | undefined> {
  return (await store.get<StoredConsumer>(API_KEY_NAMESPACE, hashApiKey(key)))?.value;
}

/** Every stored key, identified by a short prefix of its hash (safe to show). */
export async function listConsumers(store: Store): Promise<Array<StoredConsumer & { keyId: string }>> {
  const rows = await store.list<StoredConsumer>(API_KEY_NAMESPACE);
  return rows.map((r) => ({ ...r.value, keyId: keyId(r.key) }));
}

/** Revokes one key. */
export async function revokeApiKey(store: Store, key: string): Promise<boolean> {
  return store.delete(API_KEY_NAMESPACE, hashApiKey(key));
}

/** Removes every key of consumer `name`; returns how many were removed. */
export async function removeConsumer(store: Store, name: string): Promise<number> {
  let n = 0;
  for (const r of await store.list<StoredConsumer>(API_KEY_NAMESPACE)) {
    if (r.value.name === name && (await store.delete(API_KEY_NAMESPACE, r.key))) n++;
  }
  return n;
}

function keyId(keyHash: string): string {
  return keyHash.slice(0, 12);
}
