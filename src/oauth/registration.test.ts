import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import type * as oauth from "oauth4webapi";
import { createLogger } from "../log.js";
import { createSecretBox } from "../store/crypto.js";
import { MemoryStore } from "../store/memory.js";
import { CLIENTS_NS, ClientRegistry, clientMetadataDocument, dcrAuthMethod, type ClientRegistryOptions } from "./registration.js";
import { createGuardedFetch } from "./ssrf.js";

const registrations: Array<Record<string, unknown>> = [];
let server: http.Server;
let origin: string;
const fetch = createGuardedFetch({ allowPrivate: true, allowedHosts: [] });

before(async () => {
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const meta = JSON.parse(body) as Record<string, unknown>;
      registrations.push(meta);
      res.writeHead(201, { "content-type": "application/json" });
      // No client_secret_expires_at: several real servers omit it.
      res.end(JSON.stringify({ ...meta, client_id: `client-${registrations.length}`, client_secret: `secret-${registrations.length}-abcdef` }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await fetch.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const as = (extra: Partial<oauth.AuthorizationServer> = {}): oauth.AuthorizationServer => ({
  issuer: origin,
  authorization_endpoint: `${origin}/authorize`,
  token_endpoint: `${origin}/token`,
  registration_endpoint: `${origin}/register`,
  token_endpoint_auth_methods_supported: ["client_secret_basic"],
  ...extra,
});

function registry(store: MemoryStore, secrets: ReturnType<typeof createSecretBox>, over: Partial<ClientRegistryOptions> = {}, lines: string[] = []) {
  const log = createLogger({ destination: { write: (l: string) => void lines.push(l) } as unknown as NodeJS.WritableStream });
  return new ClientRegistry({
    upstreamId: "notes",
    displayName: "Notes",
    config: { mode: "auto" },
    redirectUri: "https://gw.example.com/__tollgate/connections/notes/callback",
    clientMetadataUrl: undefined,
    store,
    secrets,
    log,
    fetch,
    now: Date.now,
    ...over,
  });
}

test("DCR: registered once, persisted (secret encrypted), reused by another instance, redone after invalid_client", async () => {
  registrations.length = 0;
  const store = new MemoryStore();
  const secrets = createSecretBox([{ id: "k1", key: randomBytes(32) }]);
  const a = registry(store, secrets);
  const [c1, c2] = await Promise.all([a.resolve(as()), a.resolve(as())]);
  assert.equal(registrations.length, 1);
  assert.deepEqual(c1, c2);
  assert.equal(c1.kind, "dcr");
  assert.equal(c1.tokenEndpointAuthMethod, "client_secret_basic");
  assert.equal(registrations[0]!.token_endpoint_auth_method, "client_secret_basic");
  assert.deepEqual(registrations[0]!.grant_types, ["authorization_code", "refresh_token"]);
  const raw = JSON.stringify(await store.list(CLIENTS_NS));
  assert.ok(!raw.includes("secret-1-abcdef"), "client secret encrypted at rest");

  const b = registry(store, secrets);
  assert.equal((await b.resolve(as())).clientId, "client-1", "another instance reads the stored registration");
  assert.equal(registrations.length, 1);

  await b.invalidate(as(), c1);
  const again = await b.resolve(as());
  assert.equal(again.clientId, "client-2");
  assert.equal(registrations.length, 2);
});

test("CIMD when advertised and the public origin is https; DCR with a log line otherwise", async () => {
  registrations.length = 0;
  const store = new MemoryStore();
  const secrets = createSecretBox([{ id: "k1", key: randomBytes(32) }]);
  const cimdAs = as({ client_id_metadata_document_supported: true, token_endpoint_auth_methods_supported: ["none"] });
  const https = registry(store, secrets, { clientMetadataUrl: "https://gw.example.com/__tollgate/.well-known/oauth-client/notes" });
  assert.deepEqual(await https.resolve(cimdAs), {
    kind: "cimd",
    clientId: "https://gw.example.com/__tollgate/.well-known/oauth-client/notes",
    tokenEndpointAuthMethod: "none",
  });
  assert.equal(registrations.length, 0);
  const lines: string[] = [];
  const plain = registry(store, secrets, {}, lines);
  assert.equal((await plain.resolve(cimdAs)).kind, "dcr");
  assert.ok(lines.some((l) => l.includes("not https")));
});

test("manual clients and helpers", async () => {
  const store = new MemoryStore();
  const secrets = createSecretBox([{ id: "k1", key: randomBytes(32) }]);
  const m = registry(store, secrets, { config: { mode: "manual", clientId: "id", clientSecret: "s", tokenEndpointAuthMethod: "client_secret_post" } });
  assert.deepEqual(await m.resolve(as({ registration_endpoint: undefined })), {
    kind: "manual",
    clientId: "id",
    clientSecret: "s",
    tokenEndpointAuthMethod: "client_secret_post",
  });
  await assert.rejects(registry(store, secrets).resolve(as({ issuer: "https://other", registration_endpoint: undefined })), /manual/);
  assert.equal(dcrAuthMethod(as({ token_endpoint_auth_methods_supported: ["client_secret_post", "none"] })), "none");
  assert.equal(dcrAuthMethod(as({ token_endpoint_auth_methods_supported: undefined })), "client_secret_basic");
  const doc = clientMetadataDocument({ clientId: "https://x/doc", clientName: "N", redirectUri: "https://x/cb" });
  assert.equal(doc.token_endpoint_auth_method, "none");
  assert.deepEqual(doc.redirect_uris, ["https://x/cb"]);
});

test("two public URLs on one store: a registration each, no re-registration ping-pong, grants usable from either", async () => {
  registrations.length = 0;
  const store = new MemoryStore();
  const secrets = createSecretBox([{ id: "k1", key: randomBytes(32) }]);
  const a = registry(store, secrets, { redirectUri: "https://a.example.com/__tollgate/connections/notes/callback" });
  const b = registry(store, secrets, { redirectUri: "https://b.example.com/__tollgate/connections/notes/callback" });
  const ca = await a.resolve(as());
  const cb = await b.resolve(as());
  assert.notEqual(ca.clientId, cb.clientId);
  for (let i = 0; i < 3; i++) {
    // Fresh registries (restarted instances) on the same store, taking turns.
    assert.equal((await registry(store, secrets, { redirectUri: "https://a.example.com/__tollgate/connections/notes/callback" }).resolve(as())).clientId, ca.clientId);
    assert.equal((await registry(store, secrets, { redirectUri: "https://b.example.com/__tollgate/connections/notes/callback" }).resolve(as())).clientId, cb.clientId);
  }
  assert.equal(registrations.length, 2, "one registration per public URL, never redone");
  assert.deepEqual(registrations.map((r) => r.redirect_uris), [[ "https://a.example.com/__tollgate/connections/notes/callback"], ["https://b.example.com/__tollgate/connections/notes/callback"]]);
  // A grant made through A is refreshed by B with A's client (and its secret), and vice versa.
  assert.deepEqual(await b.clientFor(as(), ca.clientId), ca);
  assert.deepEqual(await a.clientFor(as(), cb.clientId), cb);
  assert.equal(await a.clientFor(as(), "client-unknown"), undefined, "a client this store never registered is not used");
  assert.equal(registrations.length, 2, "looking a client up never registers");
  // The AS refusing A's client drops that registration only; B keeps its own.
  await b.invalidate(as(), ca);
  assert.equal(await b.clientFor(as(), ca.clientId), undefined);
  assert.deepEqual(await a.clientFor(as(), cb.clientId), cb);
});

test("a registration stored under the older per-issuer key is still used for its callback URL", async () => {
  registrations.length = 0;
  const store = new MemoryStore();
  const secrets = createSecretBox([{ id: "k1", key: randomBytes(32) }]);
  const redirectUri = "https://gw.example.com/__tollgate/connections/notes/callback";
  const key = `notes|${origin}`;
  const meta = { clientId: "legacy-1", tokenEndpointAuthMethod: "client_secret_basic", issuer: origin, redirectUri, registeredAt: 1 };
  const { sealRecord } = await import("../store/sealed.js");
  await store.put(CLIENTS_NS, key, sealRecord(secrets, CLIENTS_NS, key, { clientSecret: "legacy-secret" }, meta));
  const r = registry(store, secrets, { redirectUri });
  assert.deepEqual(await r.resolve(as()), { kind: "dcr", clientId: "legacy-1", clientSecret: "legacy-secret", tokenEndpointAuthMethod: "client_secret_basic" });
  assert.equal((await registry(store, secrets, { redirectUri: "https://other.example.com/cb" }).clientFor(as(), "legacy-1"))?.clientSecret, "legacy-secret");
  assert.equal(registrations.length, 0);
});
