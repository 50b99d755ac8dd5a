/**
 * Outbound cross-app access: the user's IdP ID token → ID-JAG (RFC 8693 token exchange at the
 * IdP) → access token (RFC 7523 JWT bearer grant at the resource's authorization server).
 * Access tokens are cached per user in memory until shortly before they expire; concurrent
 * calls of one user share one exchange (single flight).
 *
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-identity-assertion-authz-grant/
 * @see https://www.rfc-editor.org/rfc/rfc8693#section-2.1 Token exchange request
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.1 JWT as an authorization grant
 */
import * as oauth from "oauth4webapi";
import type { GuardedFetch } from "../ssrf.js";
import { requestOptions } from "../flow.js";
import { prepareClientAuth, type ClientAuthConfig, type PreparedClientAuth } from "../client-auth.js";

export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
export const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";
export const ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token";
export const ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag";

/** `idJag` of an `id-jag` upstream, validated. */
export interface IdJagConfig {
  scopes: string[];
  scopeDelimiter: string;
  idp: { tokenUrl: string; clientAuth: ClientAuthConfig };
  resourceAs: { tokenUrl: string; audience: string; clientAuth: ClientAuthConfig; resource: string };
}

/** Why no access token could be obtained. */
export class IdJagError extends Error {
  /** `idp`: the IdP refused the exchange; `resource_as`: the resource AS refused the ID-JAG. */
  constructor(
    readonly at: "idp" | "resource_as",
    /** The OAuth error code the server answered, or `invalid_response` / `unreachable`. */
    readonly oauthError: string,
  ) {
    super(`cross-app access failed at the ${at === "idp" ? "identity provider" : "resource authorization server"}: ${oauthError}`);
    this.name = "IdJagError";
  }
}

interface Cached {
  token: string;
  /** ms since epoch after which the token is not used any more. */
  usableUntil: number;
}

/** Seconds before `expires_in` runs out at which a cached token is replaced. */
const EXPIRY_MARGIN_SECONDS = 30;
/** Lifetime assumed when the resource AS names none. */
const DEFAULT_LIFETIME_SECONDS = 300;

/** The two token requests of one `id-jag` upstream, with a per-user token cache. */
export class IdJagClient {
  private readonly cache = new Map<string, Cached>();
  private readonly inflight = new Map<string, Promise<string>>();
  private idp: PreparedClientAuth | undefined;
  private ras: PreparedClientAuth | undefined;

  constructor(
    private readonly cfg: IdJagConfig,
    private readonly deps: { fetch: GuardedFetch; now: () => number; timeoutMs?: number },
  ) {}

  /** Prepares client authentication (parses private keys); call once at start-up. */
  async init(): Promise<void> {
    this.idp = await prepareClientAuth(this.cfg.idp.clientAuth);
    this.ras = await prepareClientAuth(this.cfg.resourceAs.clientAuth);
  }

  /** A cached access token of `user` that is still usable, if any. */
  cached(user: string): string | undefined {
    const c = this.cache.get(user);
    if (c && c.usableUntil > this.deps.now()) return c.token;
    if (c) this.cache.delete(user);
    return undefined;
  }

  /** Forgets `token` of `user` (the upstream refused it). */
  forget(user: string, token: string): void {
    if (this.cache.get(user)?.token === token) this.cache.delete(user);
  }

  /**
   * An access token for `user`: the cached one, or a fresh one obtained with `idToken()` (read
   * only when an exchange is needed; undefined means the user must sign in again, returned as
   * undefined). One exchange per user at a time.
   */
  async token(user: string, idToken: () => Promise<string | undefined>): Promise<string | undefined> {
    const hit = this.cached(user);
    if (hit) return hit;
    const running = this.inflight.get(user);
    if (running) return running;
    let missing = false;
    const p = (async () => {
      const subjectToken = await idToken();
      if (!subjectToken) {
        missing = true;
        return "";
      }
      return this.exchange(user, subjectToken);
    })();
    this.inflight.set(user, p);
    try {
      const t = await p;
      return missing ? undefined : t;
    } finally {
      this.inflight.delete(user);
    }
  }

  private async exchange(user: string, subjectToken: string): Promise<string> {
    const { cfg } = this;
    const scope = cfg.scopes.length ? cfg.scopes.join(cfg.scopeDelimiter) : undefined;
    const exchangeParams = new URLSearchParams({
      requested_token_type: ID_JAG_TOKEN_TYPE,
      audience: cfg.resourceAs.audience,
      resource: cfg.resourceAs.resource,
      subject_token: subjectToken,
      subject_token_type: ID_TOKEN_TYPE,
    });
    if (scope) exchangeParams.set("scope", scope);
    const jag = await this.grant("idp", cfg.idp.tokenUrl, this.idp!, TOKEN_EXCHANGE_GRANT, exchangeParams);
    if (jag.issued_token_type !== ID_JAG_TOKEN_TYPE) throw new IdJagError("idp", "invalid_response");
    const bearerParams = new URLSearchParams({ assertion: jag.access_token });
    if (scope) bearerParams.set("scope", scope);
    const at = await this.grant("resource_as", cfg.resourceAs.tokenUrl, this.ras!, JWT_BEARER_GRANT, bearerParams);
    if ((at.token_type ?? "").toLowerCase() !== "bearer") throw new IdJagError("resource_as", "invalid_response");
    const lifetime = Math.max(0, (at.expires_in ?? DEFAULT_LIFETIME_SECONDS) - EXPIRY_MARGIN_SECONDS);
    if (lifetime > 0) this.cache.set(user, { token: at.access_token, usableUntil: this.deps.now() + lifetime * 1000 });
    return at.access_token;
  }

  private async grant(
    at: "idp" | "resource_as",
    tokenUrl: string,
    ca: PreparedClientAuth,
    grantType: string,
    params: URLSearchParams,
  ): Promise<oauth.TokenEndpointResponse> {
    const as: oauth.AuthorizationServer = { issuer: new URL(tokenUrl).origin, token_endpoint: tokenUrl };
    const signal = AbortSignal.timeout(this.deps.timeoutMs ?? 10_000);
    try {
      const res = await oauth.genericTokenEndpointRequest(as, ca.client, ca.auth, grantType, params, requestOptions(this.deps.fetch, tokenUrl, signal));
      // The IdP's answer to a token exchange carries `token_type: N_A` (the ID-JAG is no access token).
      return await oauth.processGenericTokenEndpointResponse(as, ca.client, res, { recognizedTokenTypes: { n_a: () => {} } });
    } catch (err) {
      if (err instanceof oauth.ResponseBodyError) throw new IdJagError(at, err.error.slice(0, 64));
      if (err instanceof IdJagError) throw err;
      throw new IdJagError(at, err instanceof oauth.OperationProcessingError ? "invalid_response" : "unreachable");
    }
  }
}
