/**
 * Records and configuration of the gateway's own OAuth authorization server (the one MCP
 * clients talk to). Every token-like value (codes, access and refresh tokens, client secrets,
 * pending-request ids) is stored only as its SHA-256, so a store dump yields nothing usable.
 */
import type { RouteConfig, UserInfo } from "../pipeline/types.js";
import type { IdJagVerifier } from "./id-jag.js";

/**
 * Store namespaces, all prefixed `as-` (the downstream authorization server) so they never
 * meet the upstream OAuth client's records (`oauth-clients`, `grants`, …).
 */
export const NS = {
  clients: "as-clients",
  pending: "as-pending",
  codes: "as-codes",
  usedCodes: "as-codes-used",
  grants: "as-grants",
  access: "as-access",
  refresh: "as-refresh",
} as const;

/** Authorization codes live 60 seconds and are single-use. */
export const CODE_TTL_SECONDS = 60;

/** Settings of the authorization server as a whole (from the first `mcp-oauth-inbound` policy). */
export interface AuthServerConfig {
  /** Accept URL client ids (Client ID Metadata Documents). */
  cimdEnabled: boolean;
  /** Accept RFC 7591 dynamic client registration. */
  dcrEnabled: boolean;
  /** Dynamically registered clients unused for this long are forgotten. */
  unusedClientTtlSeconds: number;
  /** Lifetime of a pending authorization request (login + consent), seconds. */
  pendingTtlSeconds: number;
  /** Pre-registered clients. */
  clients: StaticClient[];
}

/** A client configured in the policy options. */
export interface StaticClient {
  clientId: string;
  clientSecret?: string | undefined;
  clientName?: string | undefined;
  redirectUris: string[];
}

/** One protected MCP route (the `resource` of RFC 8707). */
export interface ResourceConfig {
  route: RouteConfig;
  policyName: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  /** Scopes clients may ask for on this route. */
  scopesSupported: string[];
  /** Scopes a token must carry to be accepted on this route. */
  requiredScopes: string[];
  /** The route's upstreams with per-user or shared OAuth (shown on the consent page). */
  upstreams: UpstreamInfo[];
  /** Cross-app access: ID-JAGs from these trusted issuers are accepted (JWT bearer grant); absent: refused. */
  idJag?: IdJagVerifier | undefined;
}

export interface UpstreamInfo {
  id: string;
  displayName: string;
  authMode: "user-oauth" | "shared-oauth";
}

/** A client as the authorization server knows it (from DCR, a metadata document, or config). */
export interface OAuthClient {
  clientId: string;
  kind: "dcr" | "cimd" | "static";
  clientName: string | undefined;
  clientUri: string | undefined;
  redirectUris: string[];
  grantTypes: string[];
  /** `none`, `client_secret_basic`, `client_secret_post` or `private_key_jwt`. */
  tokenEndpointAuthMethod: string;
  /** Public keys of a `private_key_jwt` client (registered `jwks`). */
  jwks?: { keys: Array<Record<string, unknown>> } | undefined;
  /** SHA-256 (base64url) of the client secret, for confidential clients. */
  secretHash: string | undefined;
  /** Scope the client registered (space separated), if any. */
  scope: string | undefined;
}

/** A stored DCR client. */
export interface StoredClient extends OAuthClient {
  issuedAt: number;
  lastUsedAt: number;
}

/** An authorization request waiting for login and consent. */
export interface PendingAuthorization {
  clientId: string;
  redirectUri: string;
  /** True when the request named redirect_uri (then the token request must repeat it). */
  redirectUriGiven: boolean;
  state: string | undefined;
  codeChallenge: string;
  resource: string;
  scope: string;
  /** The issuer the client started from (`iss` of the response); absent in older records. */
  issuer?: string | undefined;
  createdAt: number;
}

/** An issued authorization code. */
export interface CodeRecord {
  clientId: string;
  redirectUri: string;
  redirectUriGiven: boolean;
  codeChallenge: string;
  resource: string;
  scope: string;
  user: UserInfo;
  expiresAt: number;
  /** The grant the code's tokens will belong to (revoked when the code is replayed). */
  grantId: string;
}

/** A grant: one user's authorization of one client for one resource (a refresh-token family). */
export interface GrantRecord {
  clientId: string;
  user: UserInfo;
  resource: string;
  scope: string;
  /** The issuer the client started from (`iss` of the response); absent in older records. */
  issuer?: string | undefined;
  createdAt: number;
}

/** An access token (stored under `<grantId>:<sha256>`). */
export interface AccessRecord {
  clientId: string;
  user: UserInfo;
  resource: string;
  scope: string;
  expiresAt: number;
}

/** A refresh token (stored under `<grantId>:<sha256>`); kept after use to detect replay. */
export interface RefreshRecord {
  clientId: string;
  spent: boolean;
  expiresAt: number;
}
