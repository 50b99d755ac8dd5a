/**
 * How the gateway identifies itself to an upstream authorization server:
 *
 * - `auto`: a Client ID Metadata Document when the AS advertises support and the gateway's
 *   public origin is https (client_id = the document's URL); else Dynamic Client Registration,
 *   persisted per authorization server issuer and redone on `invalid_client`;
 * - `manual`: a pre-registered client id/secret with the configured auth method.
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

/** The `clientRegistration` option. */
export type ClientRegistrationConfig =
  | { mode: "auto" }
  | { mode: "manual"; clientId: string; clientSecret?: string | undefined; tokenEndpointAuthMethod: TokenEndpointAuthMethod };

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
    return `${this.o.upstreamId}|${issuer}`;
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
    this.memo.delete(key);
    const rec = await this.o.store.get<StoredClientMeta>(CLIENTS_NS, key);
    if (rec && rec.value.clientId === client.clientId) await this.o.store.delete(CLIENTS_NS, key);
    this.o.log.warn({ upstream: this.o.upstreamId, issuer: as.issuer }, "upstream rejected the registered client; it will register again");
  }

  private async read(key: string, issuer: string): Promise<ResolvedClient | undefined> {
    const rec = await this.o.store.get<StoredClientMeta & { sealed: string }>(CLIENTS_NS, key);
    if (!rec || rec.value.issuer !== issuer || rec.value.redirectUri !== this.o.redirectUri) return undefined;
    const secret = openRecord<{ clientSecret?: string }>(this.o.secrets, CLIENTS_NS, key, rec.value);
    return {
      kind: "dcr",
      clientId: rec.value.clientId,
      clientSecret: secret.clientSecret,
      tokenEndpointAuthMethod: rec.value.tokenEndpointAuthMethod,
    };
  }

  private async loadOrRegister(as: oauth.AuthorizationServer): Promise<ResolvedClient> {
    const key = this.key(as.issuer);
    const existing = await this.read(key, as.issuer);
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
