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
