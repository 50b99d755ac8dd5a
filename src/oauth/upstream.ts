/**
 * One upstream's OAuth client: discovery (cached, re-run on failure), client registration, the
 * authorization request, the callback, refresh and revocation. Knows nothing about routes,
 * users or browser pages; the token-exchange policy and the connect pages build on it.
 */
import type * as oauth from "oauth4webapi";
import { GatewayError } from "../errors.js";
import type { Logger } from "../log.js";
import type { SecretBox } from "../store/crypto.js";
import type { Store } from "../store/types.js";
import { bearerChallenge } from "./challenge.js";
import { discoverUpstream, type UpstreamDiscovery } from "./discovery.js";
import {
  authorizationUrl,
  exchangeCode,
  newPkce,
  refreshTokens,
  revokeToken,
  TokenEndpointError,
  validateCallback,
  type TokenSet,
} from "./flow.js";
import { ClientRegistry, type ClientRegistrationConfig, type ResolvedClient } from "./registration.js";
import { chooseScopes, formatScopes, type ScopeSource } from "./scopes.js";
import type { GuardedFetch } from "./ssrf.js";
import type { Tracing } from "../tracing/index.js";

export interface UpstreamOAuthConfig {
  /** Upstream id (policy option `id`). */
  id: string;
  displayName: string;
  /** The MCP server URL (the route's `rewritePattern`). */
  upstreamUrl: URL;
  /** `protectedResourceMetadataUrl` option. */
  prmOverride?: string | undefined;
  /** `scopes` option. */
  scopes?: string[] | undefined;
  scopeDelimiter: string;
  /** `prompt` option; false or undefined sends none. */
  prompt?: string | false | undefined;
  registration: ClientRegistrationConfig;
  /** The gateway's callback URL for this upstream. */
  redirectUri: string;
  /** https URL of this upstream's client metadata document, or undefined (plain-http origin). */
  clientMetadataUrl: string | undefined;
  /** How long discovery results are reused (default 1 hour). */
  discoveryTtlMs?: number;
}

export interface UpstreamOAuthDeps {
  store: Store;
  secrets: SecretBox;
  log: Logger;
  fetch: GuardedFetch;
  now: () => number;
  /** Token exchanges get a client span each when tracing is on. */
  tracing?: Tracing | undefined;
}

/** What the gateway keeps between redirecting to the AS and receiving the callback. */
export interface PendingAuthorization {
  state: string;
  verifier: string;
  issuer: string;
  clientId: string;
  resource: string;
  redirectUri: string;
  scopes: string[];
}

/** The parameters of an authorization request the gateway is about to make. */
export interface AuthorizationStart {
  url: URL;
  pending: PendingAuthorization;
  scopeSource: ScopeSource;
  /** The `prompt` sent, if any. */
  prompt: string | undefined;
}

/**
 * The `prompt` of an authorization request: an explicit one for this request; else the
 * upstream's `prompt` option when it is set (a value, or false for none); else `login` when a
 * fresh login is wanted (another user's session may be waiting at the upstream); else none.
 */
export function choosePrompt(option: string | false | undefined, explicit: string | undefined, freshLogin: boolean): string | undefined {
  if (explicit !== undefined) return explicit;
  if (option !== undefined) return option === false ? undefined : option;
  return freshLogin ? "login" : undefined;
}

/** The per-upstream OAuth client. */
export class UpstreamOAuth {
  readonly clients: ClientRegistry;
  private cached: { at: number; value: UpstreamDiscovery } | undefined;
  private inflight: Promise<UpstreamDiscovery> | undefined;
  /** The latest `WWW-Authenticate` facts the upstream sent (resource_metadata, scope). */
  lastChallenge: { resourceMetadata?: string | undefined; scope?: string | undefined } = {};

  constructor(
    readonly config: UpstreamOAuthConfig,
    private readonly deps: UpstreamOAuthDeps,
  ) {
    this.clients = new ClientRegistry({
      upstreamId: config.id,
      displayName: config.displayName,
      config: config.registration,
      redirectUri: config.redirectUri,
      clientMetadataUrl: config.clientMetadataUrl,
      store: deps.store,
      secrets: deps.secrets,
      log: deps.log,
      fetch: deps.fetch,
      now: deps.now,
    });
  }

  /** One token request, in a client span when tracing is on (no token, code or verifier on it). */
  private traced(grantType: string, run: () => Promise<TokenSet>): Promise<TokenSet> {
    const t = this.deps.tracing;
    return t ? t.trace("oauth.token", "client", { "oauth.grant_type": grantType, "tollgate.upstream": this.config.id }, run) : run();
  }

  /** Remembers what an upstream 401/403 challenge said (for discovery and scope choice). */
  noteChallenge(wwwAuthenticate: string | undefined): ReturnType<typeof bearerChallenge> {
    const c = bearerChallenge(wwwAuthenticate);
    if (c.resourceMetadata && c.resourceMetadata !== this.lastChallenge.resourceMetadata) {
      this.lastChallenge.resourceMetadata = c.resourceMetadata;
      if (!this.config.prmOverride) this.cached = undefined;
    }
    if (c.scope) this.lastChallenge.scope = c.scope;
    return c;
  }

  /** Discovery, cached for `discoveryTtlMs`; one run at a time. */
  async discovery(force = false): Promise<UpstreamDiscovery> {
    const ttl = this.config.discoveryTtlMs ?? 3_600_000;
    if (!force && this.cached && this.deps.now() - this.cached.at < ttl) return this.cached.value;
    this.inflight ??= discoverUpstream(this.deps.fetch, this.config.upstreamUrl, {
      prmOverride: this.config.prmOverride,
      challengeUrl: this.lastChallenge.resourceMetadata,
      onChallenge: (header) => void this.noteChallenge(header),
    })
      .then((value) => {
        this.cached = { at: this.deps.now(), value };
        this.deps.log.debug(
          { upstream: this.config.id, issuer: value.as.issuer, prm: value.prmUrl, resource: value.resource },
          "upstream OAuth discovery complete",
        );
        return value;
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  /** Drops cached discovery (after a failure) so the next use discovers again. */
  forgetDiscovery(): void {
    this.cached = undefined;
  }

  /** The scopes a fresh authorization would request, and why. */
  async initialScopes(): Promise<{ scopes: string[]; source: ScopeSource }> {
    const d = await this.discovery();
    return chooseScopes({
      configured: this.config.scopes,
      challengeScope: this.lastChallenge.scope,
      scopesSupported: d.scopesSupported,
    });
  }

  /**
   * Prepares an authorization request (PKCE S256, state, resource, scopes, prompt).
   * `scopes` overrides the initial choice (step-up passes the union). `freshLogin` is asked,
   * with the authorization server's issuer, whether this browser needs a fresh login there
   * (see {@link choosePrompt}).
   */
  async beginAuthorization(
    opts: { scopes?: string[] | undefined; prompt?: string | undefined; freshLogin?: ((issuer: string) => boolean) | undefined } = {},
  ): Promise<AuthorizationStart> {
    const d = await this.withRediscovery(() => this.discovery());
    const client = await this.clients.resolve(d.as);
    const chosen = opts.scopes ? { scopes: opts.scopes, source: "challenge" as ScopeSource } : await this.initialScopes();
    const pkce = await newPkce();
    const prompt = choosePrompt(this.config.prompt, opts.prompt, opts.freshLogin?.(d.as.issuer) ?? false);
    const url = authorizationUrl(d.as, client, {
      redirectUri: this.config.redirectUri,
      state: pkce.state,
      codeChallenge: pkce.challenge,
      resource: d.resource,
      scope: formatScopes(chosen.scopes, this.config.scopeDelimiter),
      prompt,
    });
    return {
      url,
      prompt,
      scopeSource: chosen.source,
      pending: {
        state: pkce.state,
        verifier: pkce.verifier,
        issuer: d.as.issuer,
        clientId: client.clientId,
        resource: d.resource,
        redirectUri: this.config.redirectUri,
        scopes: chosen.scopes,
      },
    };
  }

  /** The AS metadata and client a pending authorization was started with (same issuer, same client). */
  private async flowParties(pending: { issuer: string; clientId: string }): Promise<{ as: oauth.AuthorizationServer; client: ResolvedClient }> {
    const d = await this.discovery();
    if (d.as.issuer !== pending.issuer) {
      throw new GatewayError("upstream_issuer_changed", 409, "The upstream's authorization server changed during the connection; start again.");
    }
    const client = await this.clients.clientFor(d.as, pending.clientId);
    if (!client) {
      throw new GatewayError("upstream_client_changed", 409, "The gateway's client registration changed during the connection; start again.");
    }
    return { as: d.as, client };
  }

  /** Validates the callback (`state`, `iss`, errors) and exchanges the code, sending `resource`. */
  async completeAuthorization(pending: PendingAuthorization, callbackParams: URLSearchParams): Promise<TokenSet> {
    const { as, client } = await this.flowParties(pending);
    const params = validateCallback(as, client, callbackParams, pending.state);
    try {
      const run = () =>
        exchangeCode(this.deps.fetch, as, client, {
          params,
          redirectUri: pending.redirectUri,
          verifier: pending.verifier,
          resource: pending.resource,
          now: this.deps.now(),
        });
      return await this.traced("authorization_code", run);
    } catch (err) {
      await this.onTokenError(err, as, client);
      throw err;
    }
  }

  /**
   * Refreshes tokens for a grant made with (issuer, clientId). Errors meaning the grant can never
   * be refreshed (issuer or client changed, the AS forgot a registered client) come out as
   * `invalid_grant`, so the grant is dropped and the user asked to connect again.
   */
  async refresh(grant: { issuer: string; clientId: string; refreshToken: string; resource: string }): Promise<TokenSet> {
    const d = await this.withRediscovery(() => this.discovery());
    if (d.as.issuer !== grant.issuer) {
      throw new TokenEndpointError("invalid_grant", "issuer_changed", new Error("authorization server changed"));
    }
    const client = await this.clients.clientFor(d.as, grant.clientId);
    if (!client) {
      throw new TokenEndpointError("invalid_grant", "client_changed", new Error("client registration changed"));
    }
    try {
      const run = () => refreshTokens(this.deps.fetch, d.as, client, { refreshToken: grant.refreshToken, resource: grant.resource, now: this.deps.now() });
      return await this.traced("refresh_token", run);
    } catch (err) {
      await this.onTokenError(err, d.as, client);
      if (err instanceof TokenEndpointError && err.kind === "invalid_client" && client.kind !== "manual") {
        // The AS no longer knows the client (e.g. it forgot its registrations): its registration
        // is dropped above, and a grant made with it is lost too — connect again. A configured
        // (manual) client is the administrator's to fix; its grants are kept.
        throw new TokenEndpointError("invalid_grant", err.oauthError ?? "invalid_client", err);
      }
      throw err;
    }
  }

  /** Revokes a token upstream where supported (RFC 7009). Never throws; returns whether it did. */
  async revoke(grant: { issuer: string; clientId: string }, token: string, hint: "refresh_token" | "access_token"): Promise<boolean> {
    try {
      const { as, client } = await this.flowParties(grant);
      return await revokeToken(this.deps.fetch, as, client, token, hint);
    } catch (err) {
      this.deps.log.warn({ upstream: this.config.id, err: errorSummary(err) }, "upstream token revocation failed");
      return false;
    }
  }

  private async onTokenError(err: unknown, as: oauth.AuthorizationServer, client: ResolvedClient): Promise<void> {
    if (err instanceof TokenEndpointError && err.kind === "invalid_client") await this.clients.invalidate(as, client);
    if (err instanceof TokenEndpointError && err.kind === "temporary") this.forgetDiscovery();
  }

  private async withRediscovery<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.forgetDiscovery();
      throw err;
    }
  }
}

/** A log-safe summary of an error (code and message, no response bodies). */
export function errorSummary(err: unknown): { code?: string; message: string } {
  if (err instanceof GatewayError) return { code: err.code, message: err.message };
  if (err instanceof Error) return { message: err.message };
  return { message: String(err) };
}
