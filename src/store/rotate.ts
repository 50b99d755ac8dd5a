/**
 * Key rotation for secrets at rest (`tollgate keys rotate`): re-encrypts every sealed record
 * (see sealed.ts) whose envelope uses an older key, so the old key can then be removed from
 * `TOLLGATE_ENCRYPTION_KEY`.
 */
import type { Logger } from "../log.js";
import type { SecretBox } from "./crypto.js";
import { isSealedValue, secretAad } from "./sealed.js";
import type { Store } from "./types.js";

/** Outcome of {@link rotateSecrets}. */
export interface RotateResult {
  /** Sealed records examined. */
  scanned: number;
  /** Records re-encrypted with the current key. */
  rotated: number;
  /** Records that could not be opened with any configured key (left untouched). */
  failed: Array<{ ns: string; key: string }>;
}

/** Options for {@link rotateSecrets}. */
export interface RotateOptions {
  /** Namespaces to scan; default every namespace the store reports (`store.namespaces()`). */
  namespaces?: string[];
  /** The store's clock, to carry remaining TTLs over unchanged. Default `Date.now`. */
  now?: () => number;
  log?: Logger;
}

const MAX_ATTEMPTS = 5;

/**
 * Re-encrypts stale envelopes with `box.currentKeyId`. Each record is rewritten with
 * compare-and-swap on its version and keeps its remaining TTL; a record changed concurrently
 * is re-read and retried (a concurrent writer already used the current key in most cases).
 * Safe to run while gateways serve traffic and safe to run again.
 */
export async function rotateSecrets(store: Store, box: SecretBox, opts: RotateOptions = {}): Promise<RotateResult> {
  const now = opts.now ?? Date.now;
  let namespaces = opts.namespaces;
  if (!namespaces) {
    if (!store.namespaces) throw new Error(`the ${store.kind} store cannot list namespaces; pass them explicitly`);
    namespaces = await store.namespaces();
  }
  const result: RotateResult = { scanned: 0, rotated: 0, failed: [] };
  for (const ns of namespaces) {
    for (const listed of await store.list(ns)) {
      if (!isSealedValue(listed.value)) continue;
      result.scanned++;
      let record: typeof listed | undefined = listed;
      for (let attempt = 0; record && attempt < MAX_ATTEMPTS; attempt++) {
        const value = record.value;
        if (!isSealedValue(value) || !box.isStale(value.sealed)) break;
        let plaintext: string;
        try {
          plaintext = box.open(value.sealed, secretAad(ns, record.key));
        } catch {
          result.failed.push({ ns, key: record.key });
          opts.log?.warn({ ns, key: record.key }, "sealed record cannot be opened with the configured keys");
          break;
        }
        const ttlMs = record.expiresAt === undefined ? undefined : record.expiresAt - now();
        if (ttlMs !== undefined && ttlMs <= 0) break; // expired meanwhile; the sweep removes it
        const next = { ...value, sealed: box.seal(plaintext, secretAad(ns, record.key)) };
        const written = await store.put(ns, record.key, next, {
          ifVersion: record.version,
          ttlSeconds: ttlMs === undefined ? undefined : ttlMs / 1000,
        });
        if (written !== undefined) {
          result.rotated++;
          break;
        }
        const fresh: Awaited<ReturnType<Store["get"]>> = await store.get(ns, record.key);
        record = fresh ? { key: record.key, ...fresh } : undefined;
      }
    }
  }
  opts.log?.info({ scanned: result.scanned, rotated: result.rotated, failed: result.failed.length }, "key rotation finished");
  return result;
}
