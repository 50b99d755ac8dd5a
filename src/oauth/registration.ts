/**
 * How the gateway identifies itself to an upstream authorization server:
 *
 * - `auto`: a Client ID Metadata Document when the AS advertises support and the gateway's
 *   public origin is https (client_id = the document's URL); else Dynamic Client Registration,
 *   persisted per authorization server issuer and callback URL, and redone on `invalid_client`;
 * - `manual`: a pre-registered client with the configured auth method: a secret
 *   (`client_secret_basic` / `client_secret_post`), a private key (`private_key_jwt`) or none.
 *
 * A registration is only valid for the redirect URI it names, and that URI contains the public
 * URL. Instances with different public URLs on one store therefore each keep their own
 * registration side by side, and a grant is always refreshed (or revoked) with the client it was
 * issued to ({@link ClientRegistry.clientFor}), whichever instance made it — never by
 * re-registering over another instance's client, which would strand that instance's grants.
 *
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @see https://www.rfc-editor.org/rfc/rfc7591 Dynamic Client Registration
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#client-registration-approaches
 */
import type * as oauth from "oauth4webapi";
import { GatewayError } from "../errors.js";
import type { Logger } from "../log.js";
import type { SecretBox } from "../store/crypto.js";
import { openRecord, sealRecord } from "../store/sealed.js";
import type { Store } from "../store/types.js";
import { registerClient, type ClientIdentity, type TokenEndpointAuthMethod } from "./flow.js";
import type { GuardedFetch } from "./ssrf.js";
import type { ClientAssertionSigner } from "./client-auth.js";

/** The `clientRegistration` option. */
export type ClientRegistrationConfig =
  | { mode: "auto" }
  | {
      mode: "manual";
      clientId: string;
      clientSecret?: string | undefined;
      tokenEndpointAuthMethod: TokenEndpointAuthMethod;
      /** With `private_key_jwt`: the key imported at start-up and the assertion settings. */
      assertionSigner?: ClientAssertionSigner | undefined;
    };

/** A client identity plus how it was obtained. */
export interface ResolvedClient extends ClientIdentity {
  kind: "cimd" | "dcr" | "manual";
}

/** Store namespace of dynamically registered clients. */
export const CLIENTS_NS = "oauth-clients";

interface StoredClientMeta {
  clientId: string;
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  issuer: string;
  redirectUri: string;
  registeredAt: number;
}

/**
 * The Client ID Metadata Document the gateway serves for one upstream.
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-client-id-metadata-document#section-3
 */
export function clientMetadataDocument(p: { clientId: string; clientName: string; redirectUri: string; clientUri?: string }) {
  return {
    client_id: p.clientId,
    client_name: p.clientName,
    ...(p.clientUri ? { client_uri: p.clientUri } : {}),
    redirect_uris: [p.redirectUri],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "none",
  };
}

/** Picks the auth method to ask for in DCR: a public client when allowed, else a secret. */
export function dcrAuthMethod(as: oauth.AuthorizationServer): TokenEndpointAuthMethod {
  const supported = as.token_endpoint_auth_methods_supported ?? ["client_secret_basic"];
  if (supported.includes("none")) return "none";
  if (supported.includes("client_secret_basic")) return "client_secret_basic";
  if (supported.includes("client_secret_post")) return "client_secret_post";
  return "none";
}

export interface ClientRegistryOptions {
  upstreamId: string;
  displayName: string;
  config: ClientRegistrationConfig;
  redirectUri: string;
  /** The https URL of this upstream's Client ID Metadata Document; undefined on a plain-http origin. */
  clientMetadataUrl: string | undefined;
  store: Store;
  secrets: SecretBox;
  log: Logger;
  fetch: GuardedFetch;
  now: () => number;
}

/** Resolves (and caches) the gateway's client identity at an upstream authorization server. */
export class ClientRegistry {
  private readonly memo = new Map<string, Promise<ResolvedClient>>();
  private warnedCimd = false;

  constructor(private readonly o: ClientRegistryOptions) {}

  private key(issuer: string): string {
    return registrationKey(this.o.upstreamId, issuer, this.o.redirectUri);
  }

  /** The client to use at `as`; registers on first use when needed. */
  async resolve(as: oauth.AuthorizationServer): Promise<ResolvedClient> {
    const c = this.o.config;
    if (c.mode === "manual") {
      return {
        kind: "manual",
        clientId: c.clientId,
        clientSecret: c.clientSecret,
        tokenEndpointAuthMethod: c.tokenEndpointAuthMethod,
        ...(c.assertionSigner ? { assertionSigner: c.assertionSigner } : {}),
      };
    }
    if (as.client_id_metadata_document_supported === true) {
      if (this.o.clientMetadataUrl) {
        return { kind: "cimd", clientId: this.o.clientMetadataUrl, tokenEndpointAuthMethod: "none" };
      }
      if (!this.warnedCimd) {
        this.warnedCimd = true;
        this.o.log.info(
          { upstream: this.o.upstreamId, issuer: as.issuer },
          "upstream supports client ID metadata documents, but the gateway's public URL is not https; using dynamic client registration",
        );
      }
    }
    const key = this.key(as.issuer);
    let p = this.memo.get(key);
    if (!p) {
      p = this.loadOrRegister(as).catch((err) => {
        this.memo.delete(key);
        throw err;
      });
      this.memo.set(key, p);
    }
    return p;
  }

  /** Forgets a registration the AS rejected (`invalid_client`), so the next use re-registers. */
  async invalidate(as: oauth.AuthorizationServer, client: ResolvedClient): Promise<void> {
    if (client.kind !== "dcr") return;
    const key = this.key(as.issuer);
    const own = this.memo.get(key);
    if (own && (await own.catch(() => undefined))?.clientId === client.clientId) this.memo.delete(key);
    // The registration may be another public URL's: the AS refused that client for everyone.
    for (const rec of await this.stored(as.issuer)) {
      if (rec.value.clientId === client.clientId) await this.o.store.delete(CLIENTS_NS, rec.key);
    }
    this.o.log.warn({ upstream: this.o.upstreamId, issuer: as.issuer }, "upstream rejected the registered client; it will register again");
  }

  /**
   * The client a grant or pending authorization was issued to, so that it is refreshed, revoked
   * or completed with that client: this instance's own, or the registration another instance
   * (another public URL) made on the same store. Undefined when that client no longer exists
   * here (a replaced registration, a changed manual client): the grant cannot be used.
   * Never registers.
   * @see https://www.rfc-editor.org/rfc/rfc6749#section-6 refresh requests authenticate the client the token was issued to
   */
  async clientFor(as: oauth.AuthorizationServer, clientId: string): Promise<ResolvedClient | undefined> {
    const c = this.o.config;
    if (c.mode === "manual") return c.clientId === clientId ? await this.resolve(as) : undefined;
    const own = this.memo.get(this.key(as.issuer));
    const mine = own && (await own.catch(() => undefined));
    if (mine?.clientId === clientId) return mine;
    const rec = (await this.stored(as.issuer)).find((r) => r.value.clientId === clientId);
    if (rec) return this.open(rec.key, rec.value);
    if (as.client_id_metadata_document_supported === true && isHttpsUrl(clientId)) {
      // A metadata document URL (ours, or another public URL's): a public client with no secret.
      return { kind: "cimd", clientId, tokenEndpointAuthMethod: "none" };
    }
    return undefined;
  }

  /** Every stored registration at `issuer` for this upstream, whatever its callback URL. */
  private async stored(issuer: string): Promise<Array<{ key: string; value: StoredClientMeta & { sealed: string } }>> {
    const rows = await this.o.store.list<StoredClientMeta & { sealed: string }>(CLIENTS_NS, `${this.o.upstreamId}|${issuer}`);
    return rows.filter((r) => r.value.issuer === issuer);
  }

  private open(key: string, value: StoredClientMeta & { sealed: string }): ResolvedClient {
    const secret = openRecord<{ clientSecret?: string }>(this.o.secrets, CLIENTS_NS, key, value);
    return { kind: "dcr", clientId: value.clientId, clientSecret: secret.clientSecret, tokenEndpointAuthMethod: value.tokenEndpointAuthMethod };
  }

  private async read(key: string, issuer: string): Promise<ResolvedClient | undefined> {
    const rec = await this.o.store.get<StoredClientMeta & { sealed: string }>(CLIENTS_NS, key);
    if (!rec || rec.value.issuer !== issuer || rec.value.redirectUri !== this.o.redirectUri) return undefined;
    return this.open(key, rec.value);
  }

  private async loadOrRegister(as: oauth.AuthorizationServer): Promise<ResolvedClient> {
    const key = this.key(as.issuer);
    const existing = (await this.read(key, as.issuer)) ?? (await this.read(legacyKey(this.o.upstreamId, as.issuer), as.issuer));
    if (existing) return existing;
    if (!as.registration_endpoint) {
      throw new GatewayError(
        "upstream_registration_unavailable",
        502,
        `The upstream authorization server ${as.issuer} supports neither client ID metadata documents (on an https public URL) nor dynamic client registration; configure clientRegistration {"mode": "manual"} for upstream "${this.o.upstreamId}".`,
      );
    }
    return this.o.store.withLock(`oauth-client:${key}`, async () => {
      const again = await this.read(key, as.issuer);
      if (again) return again;
      const others = (await this.stored(as.issuer)).filter((r) => r.value.redirectUri !== this.o.redirectUri);
      if (others.length > 0) {
        this.o.log.info(
          { upstream: this.o.upstreamId, issuer: as.issuer, redirectUri: this.o.redirectUri, otherCallbacks: others.map((r) => r.value.redirectUri) },
          "the store holds registrations for other public URLs; registering this public URL's callback alongside them",
        );
      }
      const metadata = {
        client_name: this.o.displayName,
        redirect_uris: [this.o.redirectUri],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        token_endpoint_auth_method: dcrAuthMethod(as),
      };
      const reg = await registerClient(this.o.fetch, as, metadata);
      const meta: StoredClientMeta = {
        clientId: reg.clientId,
        tokenEndpointAuthMethod: reg.tokenEndpointAuthMethod,
        issuer: as.issuer,
        redirectUri: this.o.redirectUri,
        registeredAt: this.o.now(),
      };
      await this.o.store.put(CLIENTS_NS, key, sealRecord(this.o.secrets, CLIENTS_NS, key, { clientSecret: reg.clientSecret }, meta));
      this.o.log.info(
        { upstream: this.o.upstreamId, issuer: as.issuer, clientId: reg.clientId, method: reg.tokenEndpointAuthMethod },
        "registered the gateway as an OAuth client at the upstream",
      );
      return { kind: "dcr" as const, clientId: reg.clientId, clientSecret: reg.clientSecret, tokenEndpointAuthMethod: reg.tokenEndpointAuthMethod };
    });
  }
}

/**
 * Record key of a registration: upstream, issuer and callback URL. (Records written before
 * registrations were kept per callback URL use `<upstreamId>|<issuer>` and are still read.)
 */
export function registrationKey(upstreamId: string, issuer: string, redirectUri: string): string {
  return `${upstreamId}|${issuer}|${redirectUri}`;
}

function legacyKey(upstreamId: string, issuer: string): string {
  return `${upstreamId}|${issuer}`;
}

function isHttpsUrl(s: string): boolean {
  try {
    return new URL(s).protocol === "https:";
  } catch {
    return false;
  }
}
