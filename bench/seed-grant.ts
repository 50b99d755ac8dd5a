/**
 * HOOK for the token-exchange benchmark target: puts a connected user's upstream grant into the
 * store before the gateway starts, so `/mcp-tx` measures the warm path (grant present, access
 * token valid for two hours, no refresh) rather than the connect-required answer.
 *
 * The grant is written the way the connect flow writes one (`GrantManager.write`: metadata in
 * clear, tokens sealed with the gateway's key and the record address as AAD), into a SQLite file
 * the gateway then opens — a `memory:` store cannot be seeded from another process.
 */
import { findBuiltin, MCP_GATEWAY_MODULE } from "../src/policies/registry.js";
import { silentLogger } from "../src/log.js";

/** True when the token-exchange policy is registered as a built-in (the gateway can load it). */
export async function tokenExchangeAvailable(): Promise<boolean> {
  try {
    await import("../src/policies/index.js");
    return findBuiltin(MCP_GATEWAY_MODULE, "McpTokenExchangeInboundPolicy") !== undefined;
  } catch {
    return false;
  }
}

export interface SeedGrantOptions {
  /** Store spec the gateway will open (the seed writes to the same store). */
  storeSpec: string;
  projectDir: string;
  /** `TOLLGATE_ENCRYPTION_KEY` the gateway will use. */
  encryptionKey: string;
  subject: string;
  upstreamId: string;
  /** The upstream access token to attach. */
  accessToken: string;
  /** The upstream's URL (the grant's resource). */
  resource: string;
}

/** Seeds the grant and closes the store. */
export async function seedGrant(o: SeedGrantOptions): Promise<void> {
  const { createStore } = await import("../src/store/index.js");
  const { createSecretBox, parseKeyRing } = await import("../src/store/crypto.js");
  const { GrantManager, grantKey } = await import("../src/oauth/grants.js");
  const store = await createStore(o.storeSpec, { projectDir: o.projectDir });
  try {
    const now = Date.now();
    const grants = new GrantManager({
      store,
      secrets: createSecretBox(parseKeyRing(o.encryptionKey)),
      log: silentLogger,
      now: () => Date.now(),
    });
    const version = await grants.write(
      grantKey(o.upstreamId, o.subject),
      {
        upstreamId: o.upstreamId,
        mode: "user",
        subject: o.subject,
        issuer: "https://as.bench.invalid",
        clientId: "bench-client",
        resource: o.resource,
        scopes: [],
        grantedScope: undefined,
        expiresAt: undefined,
        obtainedAt: now,
        hasRefreshToken: false,
        createdAt: now,
        refreshedAt: undefined,
        stepUps: 0,
      },
      { accessToken: o.accessToken, refreshToken: undefined, tokenType: "Bearer", expiresAt: now + 2 * 3600_000, scope: undefined },
    );
    if (version === undefined) throw new Error("seed-grant: the grant could not be written");
  } finally {
    await store.close();
  }
}
