import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../log.js";
import { generateKey } from "../store/crypto.js";
import { MemoryStore } from "../store/memory.js";
import { TimedStore } from "../audit/store-timing.js";
import {
  buildServices,
  devKeyPath,
  EnvConfigError,
  normalizeBasePath,
  parseAdminClaim,
  resolveKeyRing,
  selfCommand,
  settingsFromEnv,
} from "./services.js";

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), "tollgate-services-"));
}

test("settings have safe defaults", () => {
  const s = settingsFromEnv({}, "127.0.0.1", 9000);
  assert.equal(s.publicUrl, "http://127.0.0.1:9000");
  assert.equal(s.basePath, "/__tollgate");
  assert.equal(s.devLogin, false);
  assert.deepEqual(s.adminSubjects, []);
  assert.equal(s.adminClaim, undefined);
  assert.equal(s.mode, "development");
  assert.ok(s.maxBodyBytes > 0);
  assert.equal(s.maxBatchMessages, 100);
  assert.equal(s.maxBatchBytes, 1024 * 1024);
});

test("settings come from TOLLGATE_* variables", () => {
  const s = settingsFromEnv(
    {
      TOLLGATE_PUBLIC_URL: "https://gw.example.com/",
      TOLLGATE_BASE_PATH: "gw/",
      TOLLGATE_DEV_LOGIN: "1",
      TOLLGATE_ADMIN_SUBJECTS: "alice, bob,,",
      TOLLGATE_ADMIN_CLAIM: "roles=admin,owner",
      TOLLGATE_ALLOWED_UPSTREAM_HOSTS: "Internal.example, 10.0.0.5",
      TOLLGATE_MAX_BATCH_MESSAGES: "20",
      TOLLGATE_MAX_BATCH_BYTES: "65536",
    },
    "0.0.0.0",
    80,
  );
  assert.equal(s.publicUrl, "https://gw.example.com");
  assert.equal(s.basePath, "/gw");
  assert.equal(s.devLogin, true);
  assert.deepEqual(s.adminSubjects, ["alice", "bob"]);
  assert.deepEqual(s.adminClaim, { name: "roles", values: ["admin", "owner"] });
  assert.deepEqual(s.allowedUpstreamHosts, ["internal.example", "10.0.0.5"]);
  assert.equal(s.mode, "development");
  assert.equal(s.maxBatchMessages, 20);
  assert.equal(s.maxBatchBytes, 65536);
  assert.equal(settingsFromEnv({ NODE_ENV: "production" }, "h", 1).mode, "production");
});

test("production mode refuses the dev login", () => {
  assert.throws(
    () => settingsFromEnv({ TOLLGATE_DEV_LOGIN: "1", TOLLGATE_MODE: "production" }, "h", 1),
    /TOLLGATE_DEV_LOGIN cannot be enabled in production/,
  );
});

test("the default public URL brackets IPv6 and maps wildcard hosts to localhost", () => {
  assert.equal(settingsFromEnv({}, "::1", 8080).publicUrl, "http://[::1]:8080");
  assert.equal(settingsFromEnv({}, "0.0.0.0", 8080).publicUrl, "http://localhost:8080");
});

test("bad values are rejected with the variable name", () => {
  assert.throws(() => settingsFromEnv({ TOLLGATE_PUBLIC_URL: "ftp://x" }, "h", 1), /TOLLGATE_PUBLIC_URL/);
  assert.throws(() => parseAdminClaim("roles"), /TOLLGATE_ADMIN_CLAIM/);
  assert.throws(() => settingsFromEnv({ TOLLGATE_MAX_BODY_BYTES: "-1" }, "h", 1), /TOLLGATE_MAX_BODY_BYTES/);
  assert.throws(() => settingsFromEnv({ TOLLGATE_MAX_BATCH_MESSAGES: "0" }, "h", 1), /TOLLGATE_MAX_BATCH_MESSAGES/);
  assert.throws(() => settingsFromEnv({ TOLLGATE_MAX_BATCH_BYTES: "1.5" }, "h", 1), /TOLLGATE_MAX_BATCH_BYTES/);
  assert.equal(normalizeBasePath("/"), "");
});

test("production refuses to run without an encryption key", async () => {
  const dir = await tempDir();
  try {
    assert.throws(() => resolveKeyRing({}, dir, "production", silentLogger), EnvConfigError);
    await assert.rejects(
      buildServices({ env: { TOLLGATE_MODE: "production" }, projectDir: dir, host: "127.0.0.1", port: 1, store: new MemoryStore() }),
      /TOLLGATE_ENCRYPTION_KEY is required in production/,
    );
    await assert.rejects(fs.access(devKeyPath(dir)), "no key file is written in production");
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("development generates a key once and reuses it", async () => {
  const dir = await tempDir();
  try {
    const a = resolveKeyRing({}, dir, "development", silentLogger);
    const b = resolveKeyRing({}, dir, "development", silentLogger);
    assert.equal(a[0]!.key.length, 32);
    assert.deepEqual(a[0]!.key, b[0]!.key);
    const stat = await fs.stat(devKeyPath(dir));
    assert.equal(stat.mode & 0o077, 0, "key file is private");
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

/** Runs `fn` with the most permissive umask (every mode bit a call asks for is kept). */
async function withUmask0<T>(fn: () => Promise<T>): Promise<T> {
  const previous = process.umask(0);
  try {
    return await fn();
  } finally {
    process.umask(previous);
  }
}

const modeOf = async (p: string) => (await fs.stat(p)).mode & 0o777;

test("with umask 000 the generated key's folder is 0700 and the key 0600", async () => {
  const dir = await tempDir();
  try {
    await withUmask0(async () => {
      resolveKeyRing({}, dir, "development", silentLogger);
      assert.equal(await modeOf(path.dirname(devKeyPath(dir))), 0o700);
      assert.equal(await modeOf(devKeyPath(dir)), 0o600);
    });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a .tollgate folder and key created too open (0755/0644) are narrowed, and the key kept", async () => {
  const dir = await tempDir();
  try {
    const key = generateKey();
    await withUmask0(async () => {
      await fs.mkdir(path.join(dir, ".tollgate"), { mode: 0o755 });
      await fs.writeFile(devKeyPath(dir), `${key}\n`, { mode: 0o644 });
      const ring = resolveKeyRing({}, dir, "development", silentLogger);
      assert.deepEqual(ring[0]!.key, resolveKeyRing({ TOLLGATE_ENCRYPTION_KEY: key }, dir, "production", silentLogger)[0]!.key);
      assert.equal(await modeOf(path.join(dir, ".tollgate")), 0o700);
      assert.equal(await modeOf(devKeyPath(dir)), 0o600);
    });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("with umask 000 and a configured key the default SQLite store's folder is 0700 and its file 0600", async () => {
  const dir = await tempDir();
  try {
    await withUmask0(async () => {
      await fs.mkdir(path.join(dir, ".tollgate"), { mode: 0o755 });
      const services = await buildServices({ env: { TOLLGATE_ENCRYPTION_KEY: generateKey() }, projectDir: dir, log: silentLogger, host: "127.0.0.1", port: 0 });
      try {
        assert.equal(await modeOf(path.join(dir, ".tollgate")), 0o700);
        assert.equal(await modeOf(path.join(dir, ".tollgate", "data.db")), 0o600);
      } finally {
        await services.store.close();
        await services.dispatcher.close();
      }
    });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a configured key ring is used and a bad one rejected", () => {
  const k1 = generateKey();
  const k2 = generateKey();
  const ring = resolveKeyRing({ TOLLGATE_ENCRYPTION_KEY: `old:${k1},new:${k2}` }, "/nonexistent", "production", silentLogger);
  assert.deepEqual(ring.map((k) => k.id), ["old", "new"]);
  assert.throws(() => resolveKeyRing({ TOLLGATE_ENCRYPTION_KEY: "short" }, "/x", "development", silentLogger), /TOLLGATE_ENCRYPTION_KEY/);
});

test("buildServices wires store, secrets, health endpoints and overrides", async () => {
  const store = new MemoryStore();
  const services = await buildServices({
    env: { TOLLGATE_ENCRYPTION_KEY: generateKey(), EXTRA: "1" },
    projectDir: "/nonexistent",
    host: "127.0.0.1",
    port: 1234,
    store,
    log: silentLogger,
    overrides: { devLogin: true },
  });
  try {
    // The store is handed out wrapped for its latency metrics; the wrapper holds the given store.
    assert.ok(services.store instanceof TimedStore);
    assert.equal(services.store.inner, store);
    assert.equal(services.settings.devLogin, true);
    assert.equal(services.settings.publicUrl, "http://127.0.0.1:1234");
    assert.equal(services.env.EXTRA, "1");
    const sealed = services.secrets.seal("s", "aad");
    assert.equal(services.secrets.open(sealed, "aad"), "s");
    const health = services.systemRoutes.match("GET", "/healthz");
    assert.ok(health && "handler" in health);
    const ctx = { params: {}, requestId: "r", services, remoteAddress: "127.0.0.1" };
    const res = await health.handler(new Request("http://x/healthz"), ctx);
    assert.deepEqual(await res.json(), { status: "ok" });
    const ready = services.systemRoutes.match("GET", "/readyz");
    assert.ok(ready && "handler" in ready);
    assert.equal((await ready.handler(new Request("http://x/readyz"), ctx)).status, 200);
    await store.close();
    assert.equal((await ready.handler(new Request("http://x/readyz"), ctx)).status, 503);
  } finally {
    await services.dispatcher.close();
  }
});

test("selfCommand names the CLI the way it was run: node + path in a checkout, npx from node_modules", async () => {
  const dir = await tempDir();
  try {
    const checkoutBin = path.join(dir, "tollgate", "bin", "tollgate.js");
    const installedBin = path.join(dir, "app", "node_modules", "tollgate", "bin", "tollgate.js");
    for (const f of [checkoutBin, installedBin]) {
      await fs.mkdir(path.dirname(f), { recursive: true });
      await fs.writeFile(f, "");
    }
    // npm links node_modules/.bin/tollgate to the package's bin file
    await fs.mkdir(path.join(dir, "app", "node_modules", ".bin"));
    await fs.symlink("../tollgate/bin/tollgate.js", path.join(dir, "app", "node_modules", ".bin", "tollgate"));
    assert.equal(selfCommand(checkoutBin, path.join(dir, "tollgate")), "node bin/tollgate.js");
    assert.equal(selfCommand(checkoutBin, path.join(dir, "tollgate", "bin")), "node tollgate.js");
    assert.equal(selfCommand(checkoutBin, path.join(dir, "elsewhere")), `node ${checkoutBin}`);
    assert.equal(selfCommand(path.join(dir, "app", "node_modules", ".bin", "tollgate"), path.join(dir, "app")), "npx tollgate");
    assert.equal(selfCommand(installedBin, path.join(dir, "app")), "npx tollgate");
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("TOLLGATE_AUDIT=off leaves out the audit trail and MCP metrics; other values are refused", async () => {
  const { observabilityFromEnv } = await import("./observability.js");
  const { createMetrics } = await import("../metrics.js");
  const store = new MemoryStore();
  const on = observabilityFromEnv({}, { log: silentLogger, store, metrics: createMetrics() });
  assert.ok(on.audit && on.mcpMetrics);
  assert.ok(on.store instanceof TimedStore);
  const off = observabilityFromEnv({ TOLLGATE_AUDIT: "off" }, { log: silentLogger, store, metrics: createMetrics() });
  assert.equal(off.audit, undefined);
  assert.equal(off.mcpMetrics, undefined);
  assert.equal(off.store, store);
  assert.throws(() => observabilityFromEnv({ TOLLGATE_AUDIT: "no" }, { log: silentLogger, store, metrics: createMetrics() }), /TOLLGATE_AUDIT must be on or off/);
  assert.throws(
    () => observabilityFromEnv({ TOLLGATE_AUDIT: "off", TOLLGATE_AUDIT_SINK: "store" }, { log: silentLogger, store, metrics: createMetrics() }),
    /TOLLGATE_AUDIT=off/,
  );
});
