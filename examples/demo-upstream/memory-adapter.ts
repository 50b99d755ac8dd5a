/**
 * An in-memory storage adapter for `oidc-provider` that can also enumerate what it holds, so the
 * demo upstream can revoke or expire a user's tokens on demand (the way a user revoking an app in
 * a provider's settings would).
 *
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/README.md#adapter
 */
import type { Adapter, AdapterPayload } from "oidc-provider";

interface Entry {
  model: string;
  payload: AdapterPayload;
  /** Epoch milliseconds, or undefined for records that do not expire. */
  expiresAt: number | undefined;
}

/** Looks up a client id that is not stored (used for Client ID Metadata Documents). */
export type ClientResolver = (clientId: string) => Promise<AdapterPayload | undefined>;

/** The data shared by every model's adapter instance. */
export class MemoryStorage {
  private readonly entries = new Map<string, Entry>();
  /** Consulted by the `Client` model when an id is not stored. */
  resolveClient: ClientResolver | undefined;

  private key(model: string, id: string): string {
    return `${model}:${id}`;
  }

  get(model: string, id: string): AdapterPayload | undefined {
    const k = this.key(model, id);
    const e = this.entries.get(k);
    if (!e) return undefined;
    if (e.expiresAt !== undefined && e.expiresAt <= Date.now()) {
      this.entries.delete(k);
      return undefined;
    }
    return e.payload;
  }

  set(model: string, id: string, payload: AdapterPayload, expiresInSeconds: number | undefined): void {
    const expiresAt = expiresInSeconds ? Date.now() + expiresInSeconds * 1000 : undefined;
    this.entries.set(this.key(model, id), { model, payload, expiresAt });
  }

  delete(model: string, id: string): void {
    this.entries.delete(this.key(model, id));
  }

  /** Every live record of a model, with its id. */
  list(model: string): Array<{ id: string; payload: AdapterPayload }> {
    const out: Array<{ id: string; payload: AdapterPayload }> = [];
    const prefix = `${model}:`;
    for (const [k, e] of this.entries) {
      if (e.model !== model) continue;
      if (e.expiresAt !== undefined && e.expiresAt <= Date.now()) continue;
      out.push({ id: k.slice(prefix.length), payload: e.payload });
    }
    return out;
  }

  /** Removes every record (of any model) that belongs to a grant. */
  deleteByGrantId(grantId: string): void {
    for (const [k, e] of this.entries) {
      if (e.payload.grantId === grantId) this.entries.delete(k);
    }
  }

  /** Builds the adapter class `oidc-provider` instantiates once per model name. */
  adapterClass(): new (model: string) => Adapter {
    const storage = this;
    return class MemoryAdapter implements Adapter {
      constructor(private readonly model: string) {}

      async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
        storage.set(this.model, id, payload, expiresIn);
      }

      async find(id: string): Promise<AdapterPayload | undefined> {
        const found = storage.get(this.model, id);
        if (found || this.model !== "Client" || !storage.resolveClient) return found;
        return storage.resolveClient(id);
      }

      async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
        return storage.list(this.model).find((r) => r.payload.userCode === userCode)?.payload;
      }

      async findByUid(uid: string): Promise<AdapterPayload | undefined> {
        return storage.list(this.model).find((r) => r.payload.uid === uid)?.payload;
      }

      async consume(id: string): Promise<void> {
        const found = storage.get(this.model, id);
        if (found) found.consumed = Math.floor(Date.now() / 1000);
      }

      async destroy(id: string): Promise<void> {
        storage.delete(this.model, id);
      }

      async revokeByGrantId(grantId: string): Promise<void> {
        storage.deleteByGrantId(grantId);
      }
    };
  }
}
