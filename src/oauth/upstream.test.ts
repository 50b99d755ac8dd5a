import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { silentLogger } from "../log.js";
import { createSecretBox } from "../store/crypto.js";
import { MemoryStore } from "../store/memory.js";
import { TokenEndpointError } from "./flow.js";
import { CLIENTS_NS, registrationKey, type ClientRegistrationConfig } from "./registration.js";
import type { GuardedFetch } from "./ssrf.js";
import { choosePrompt, UpstreamOAuth } from "./upstream.js";

const UP = "https://up.example";
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** An upstream whose token endpoint answers `invalid_client` to every request (no network). */
function forgetfulUpstream(): { fetch: GuardedFetch; registrations: number } {
  const state = { registrations: 0 };
  const fetch: GuardedFetch = async (url) => {
    const u = new URL(url);
    switch (u.pathname) {
      case "/.well-known/oauth-protected-resource/mcp":
        return json({ resource: `${UP}/mcp`, authorization_servers: [UP] });
      case "/.well-known/oauth-authorization-server":
        return json({
          issuer: UP,
          authorization_endpoint: `${UP}/authorize`,
          token_endpoint: `${UP}/token`,
          registration_endpoint: `${UP}/register`,
          token_endpoint_auth_methods_supported: ["none"],
          code_challenge_methods_supported: ["S256"],
        });
      case "/register":
        state.registrations++;
        return json({ client_id: `dcr-${state.registrations}`, redirect_uris: ["https://gw.example/cb"], token_endpoint_auth_method: "none" }, 201);
      case "/token":
        return json({ error: "invalid_client", error_description: "unknown client" }, 400);
      default:
        return json({ error: "not_found" }, 404);
    }
  };
  return {
    fetch,
    get registrations() {
      return state.registrations;
    },
  };
}

function upstream(registration: ClientRegistrationConfig, fetch: GuardedFetch, store = new MemoryStore()) {
  const o = new UpstreamOAuth(
    {
      id: "notes",
      displayName: "Notes",
      upstreamUrl: new URL(`${UP}/mcp`),
      scopeDelimiter: " ",
      registration,
      redirectUri: "https://gw.example/cb",
      clientMetadataUrl: undefined,
    },
    { store, secrets: createSecretBox([{ id: "k1", key: randomBytes(32) }]), log: silentLogger, fetch, now: Date.now },
  );
  return { o, store };
}

const grant = (clientId: string) => ({ issuer: UP, clientId, refreshToken: "rt-1", resource: `${UP}/mcp` });

test("invalid_client at refresh: the registration is dropped and the grant reads as invalid_grant (connect again)", async () => {
  const up = forgetfulUpstream();
  const { o, store } = upstream({ mode: "auto" }, up.fetch);
  const client = await o.clients.resolve((await o.discovery()).as);
  assert.equal(client.clientId, "dcr-1");
  assert.ok(await store.get(CLIENTS_NS, registrationKey("notes", UP, "https://gw.example/cb")));
  await assert.rejects(o.refresh(grant(client.clientId)), (err: unknown) => {
    assert.ok(err instanceof TokenEndpointError);
    assert.equal(err.kind, "invalid_grant");
    assert.equal(err.oauthError, "invalid_client");
    return true;
  });
  assert.equal(await store.get(CLIENTS_NS, registrationKey("notes", UP, "https://gw.example/cb")), undefined, "the stale registration is gone");
  assert.equal((await o.clients.resolve((await o.discovery()).as)).clientId, "dcr-2", "the next connect registers anew");
});

test("invalid_client at refresh with a configured (manual) client: the grant is the administrator's to keep", async () => {
  const up = forgetfulUpstream();
  const { o } = upstream({ mode: "manual", clientId: "configured", tokenEndpointAuthMethod: "none" }, up.fetch);
  await assert.rejects(o.refresh(grant("configured")), (err: unknown) => err instanceof TokenEndpointError && err.kind === "invalid_client");
  assert.equal(up.registrations, 0);
});

test("prompt: a per-request value, else the upstream's option (false: none), else login when a fresh login is wanted", () => {
  assert.equal(choosePrompt(undefined, undefined, false), undefined);
  assert.equal(choosePrompt(undefined, undefined, true), "login");
  // The administrator's explicit choice wins over the fresh-login rule.
  assert.equal(choosePrompt("select_account", undefined, true), "select_account");
  assert.equal(choosePrompt("consent", undefined, false), "consent");
  assert.equal(choosePrompt(false, undefined, true), undefined);
  assert.equal(choosePrompt("none", "consent", true), "consent");
});
