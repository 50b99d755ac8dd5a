/**
 * OAuth clients of the gateway's authorization server: pre-registered (policy options),
 * dynamically registered (RFC 7591) and URL client ids (Client ID Metadata Documents).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591 Dynamic Client Registration
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3 Loopback redirect URIs
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 */
import type { GatewayServices } from "../pipeline/services.js";
import { safeEqual } from "../web/session.js";
import { isCimdClientId, resolveCimdClient } from "./cimd.js";
import { assertionClientId, CLIENT_ASSERTION_TYPE, jwksProblem, verifyClientAssertion } from "./client-assertion.js";
import { random, sha256 } from "./http.js";
import { NS, type AuthServerConfig, type OAuthClient, type StoredClient } from "./types.js";

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)$/i;
/** Schemes a redirect URI may never use. */
const FORBIDDEN_SCHEMES = new Set(["javascript:", "data:", "file:", "vbscript:", "about:", "blob:", "ws:", "wss:", "ftp:"]);

/**
 * Checks one redirect URI: absolute, no fragment, no credentials; `https:`; `http:` only to
 * loopback; or a private-use scheme (native apps, e.g. `cursor://`). Returns a reason or undefined.
 */
export function redirectUriProblem(value: unknown): string | undefined {
  if (typeof value !== "string" || value.length === 0 || value.length > 2000) return "must be a non-empty URI";
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return "must be an absolute URI";
  }
  if (u.hash || value.includes("#")) return "must not contain a fragment";
  if (u.username || u.password) return "must not contain credentials";
  if (FORBIDDEN_SCHEMES.has(u.protocol)) return `scheme ${u.protocol} is not allowed`;
  if (u.protocol === "http:" && !LOOPBACK.test(u.hostname)) return "plain http is only allowed for loopback hosts";
  if (u.protocol !== "http:" && u.protocol !== "https:" && !/^[a-z][a-z0-9+.-]*:$/.test(u.protocol)) return "bad scheme";
  return undefined;
}

/** True for a loopback `http` redirect URI (a native app on the user's own machine). */
export function isLoopbackRedirect(uri: string): boolean {
  try {
    const u = new URL(uri);
    return u.protocol === "http:" && LOOPBACK.test(u.hostname);
  } catch {
    return false;
  }
}

/**
 * True when `given` is one of the client's redirect URIs. Exact string match, except that for
 * loopback `http` URIs the port may differ (native apps pick a free port at run time).
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 */
export function redirectUriMatches(registered: string[], given: string): boolean {
  if (registered.includes(given)) return true;
  let g: URL;
  try {
    g = new URL(given);
  } catch {
    return false;
  }
  if (g.protocol !== "http:" || !LOOPBACK.test(g.hostname) || given.includes("#")) return false;
  return registered.some((r) => {
    try {
      const u = new URL(r);
      return (
        u.protocol === "http:" &&
        u.hostname === g.hostname &&
        u.pathname === g.pathname &&
        u.search === g.search &&
        !g.username &&
        !g.password
      );
    } catch {
      return false;
    }
  });
}

/** Finds a client by id: configured, registered (DCR), or a URL id (CIMD). */
export async function findClient(
  services: GatewayServices,
  config: AuthServerConfig,
  clientId: string,
): Promise<OAuthClient | undefined> {
  const configured = config.clients.find((c) => c.clientId === clientId);
  if (configured) {
    return {
      clientId,
      kind: "static",
      clientName: configured.clientName,
      clientUri: undefined,
      redirectUris: configured.redirectUris,
      grantTypes: ["authorization_code", "refresh_token"],
      tokenEndpointAuthMethod: configured.clientSecret ? "client_secret_basic" : "none",
      secretHash: configured.clientSecret ? sha256(configured.clientSecret) : undefined,
      scope: undefined,
    };
  }
  if (isCimdClientId(clientId)) {
    if (!config.cimdEnabled) return undefined;
    return resolveCimdClient(services, clientId);
  }
  if (clientId.length > 200) return undefined;
  const rec = await services.store.get<StoredClient>(NS.clients, clientId);
  if (!rec) return undefined;
  // Sliding expiry: a client in use stays registered (refreshed at most once a day).
  const now = services.now();
  if (now - rec.value.lastUsedAt > 86_400_000) {
    await services.store.put(NS.clients, clientId, { ...rec.value, lastUsedAt: now }, { ttlSeconds: config.unusedClientTtlSeconds });
  }
  return rec.value;
}

/** The outcome of client authentication at the token and revocation endpoints. */
export type ClientAuthResult = { ok: true; client: OAuthClient } | { ok: false; error: string; description: string; status: number };

/**
 * Authenticates the client of a token/revocation request: HTTP Basic, `client_secret_post`,
 * `private_key_jwt` (a signed `client_assertion`), or (public clients) just `client_id`. A
 * confidential client must use its method; a request may use only one method.
 * `audiences` are the values a client assertion's `aud` may name (this server).
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2
 */
export async function authenticateClient(
  request: Request,
  form: URLSearchParams,
  services: GatewayServices,
  config: AuthServerConfig,
  audiences: string[] = [],
): Promise<ClientAuthResult> {
  const failed = (description = "Client authentication failed."): ClientAuthResult => ({ ok: false, error: "invalid_client", description, status: 401 });
  let clientId = form.get("client_id") ?? undefined;
  let secret = form.get("client_secret") ?? undefined;
  let method = secret ? "client_secret_post" : "none";
  const basic = /^Basic\s+(.+)$/i.exec(request.headers.get("authorization") ?? "");
  if (basic) {
    const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return failed("Malformed Basic credentials.");
    try {
      const id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, " "));
      if (clientId !== undefined && clientId !== id) {
        return { ok: false, error: "invalid_request", description: "client_id differs from the Basic credentials.", status: 400 };
      }
      if (secret !== undefined) {
        return { ok: false, error: "invalid_request", description: "Use one client authentication method, not several.", status: 400 };
      }
      clientId = id;
      secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, " "));
      method = "client_secret_basic";
    } catch {
      return failed("Malformed Basic credentials.");
    }
  }
  const assertionType = form.get("client_assertion_type");
  const assertion = form.get("client_assertion");
  if (assertionType !== null || assertion !== null) {
    if (method !== "none") return { ok: false, error: "invalid_request", description: "Use one client authentication method, not several.", status: 400 };
    if (assertionType !== CLIENT_ASSERTION_TYPE || !assertion || form.getAll("client_assertion").length > 1) {
      return failed(`Send one client_assertion with client_assertion_type ${CLIENT_ASSERTION_TYPE}.`);
    }
    const issuer = assertionClientId(assertion);
    if (!issuer || (clientId !== undefined && clientId !== issuer)) return failed();
    clientId = issuer;
    method = "private_key_jwt";
  }
  if (!clientId) return failed();
  const client = await findClient(services, config, clientId).catch(() => undefined);
  if (!client) return failed();
  if (client.tokenEndpointAuthMethod === "private_key_jwt") {
    if (method !== "private_key_jwt" || !client.jwks) return failed("This client authenticates with private_key_jwt.");
    const why = await verifyClientAssertion(services, client.clientId, client.jwks as never, assertion!, audiences);
    return why ? failed(why) : { ok: true, client };
  }
  if (method === "private_key_jwt") return failed("This client is not registered for private_key_jwt.");
  if (client.secretHash) {
    if (!secret || !safeEqual(sha256(secret), client.secretHash)) return failed();
  } else if (method !== "none") {
    return failed("This client has no secret.");
  }
  return { ok: true, client };
}

/** Grant types and auth methods the server supports. */
export const GRANT_TYPES = ["authorization_code", "refresh_token"];
export const AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"];

/** Scopes that are always tolerated in requests and registrations (granted nothing extra). */
export const TOLERATED_SCOPES = new Set(["offline_access"]);

/** Space-separated scope string → unique list. */
export function scopeList(scope: string | undefined | null): string[] {
  return [...new Set((scope ?? "").split(" ").filter(Boolean))];
}

/**
 * Handles an RFC 7591 registration request body. Returns the 201 answer body or an error.
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2
 */
export async function registerClient(
  body: unknown,
  services: GatewayServices,
  config: AuthServerConfig,
  knownScopes: Set<string>,
): Promise<{ ok: true; body: Record<string, unknown> } | { ok: false; error: string; description: string }> {
  const bad = (description: string) => ({ ok: false as const, error: "invalid_client_metadata", description });
  if (typeof body !== "object" || body === null || Array.isArray(body)) return bad("The body must be a JSON object.");
  const m = body as Record<string, unknown>;
  const uris = m.redirect_uris;
  if (!Array.isArray(uris) || uris.length === 0 || uris.length > 10) {
    return { ok: false, error: "invalid_redirect_uri", description: "redirect_uris must list 1 to 10 URIs." };
  }
  for (const u of uris) {
    const why = redirectUriProblem(u);
    if (why) return { ok: false, error: "invalid_redirect_uri", description: `redirect_uris: ${why}.` };
  }
  const method = m.token_endpoint_auth_method ?? "client_secret_basic";
  if (typeof method !== "string" || !AUTH_METHODS.includes(method)) {
    return bad(`token_endpoint_auth_method must be one of ${AUTH_METHODS.join(", ")}.`);
  }
  let jwks: OAuthClient["jwks"];
  if (method === "private_key_jwt") {
    if (m.jwks_uri !== undefined) return bad("jwks_uri is not supported: register the public keys inline as jwks.");
    const why = jwksProblem(m.jwks);
    if (why) return bad(`${why}.`);
    jwks = m.jwks as OAuthClient["jwks"];
  } else if (m.jwks !== undefined || m.jwks_uri !== undefined) {
    return bad("jwks is only used with token_endpoint_auth_method private_key_jwt.");
  }
  const grantTypes = m.grant_types ?? ["authorization_code", "refresh_token"];
  if (!Array.isArray(grantTypes) || grantTypes.some((g) => typeof g !== "string" || !GRANT_TYPES.includes(g))) {
    return bad(`grant_types may only contain ${GRANT_TYPES.join(", ")}.`);
  }
  if (!grantTypes.includes("authorization_code")) return bad("grant_types must include authorization_code.");
  const responseTypes = m.response_types ?? ["code"];
  if (!Array.isArray(responseTypes) || responseTypes.some((r) => r !== "code")) return bad("response_types may only contain code.");
  let scope: string | undefined;
  if (m.scope !== undefined) {
    if (typeof m.scope !== "string") return bad("scope must be a string.");
    const unknown = scopeList(m.scope).filter((s) => !knownScopes.has(s) && !TOLERATED_SCOPES.has(s));
    if (unknown.length) return bad(`scope may only name ${[...knownScopes].join(", ")} (see scopes_supported in the metadata).`);
    scope = scopeList(m.scope).join(" ") || undefined;
  }
  const name = m.client_name;
  if (name !== undefined && (typeof name !== "string" || name.length > 200)) return bad("client_name must be a string of at most 200 characters.");
  let clientUri: string | undefined;
  if (typeof m.client_uri === "string") {
    try {
      if (new URL(m.client_uri).protocol === "https:") clientUri = m.client_uri;
    } catch {
      return bad("client_uri must be an https URL.");
    }
  }
  const now = services.now();
  const clientId = `tgc_${random(18)}`;
  const secret = method === "none" || method === "private_key_jwt" ? undefined : random(32);
  const record: StoredClient = {
    clientId,
    kind: "dcr",
    clientName: name as string | undefined,
    clientUri,
    redirectUris: uris as string[],
    grantTypes: grantTypes as string[],
    tokenEndpointAuthMethod: method,
    secretHash: secret ? sha256(secret) : undefined,
    jwks,
    scope,
    issuedAt: now,
    lastUsedAt: now,
  };
  await services.store.put(NS.clients, clientId, record, { ttlSeconds: config.unusedClientTtlSeconds, ifVersion: 0 });
  services.log.info({ clientId, clientName: record.clientName, authMethod: method }, "oauth client registered");
  // The answer echoes the registered metadata (RFC 7591 §3.2.1); without a requested scope, the
  // scopes the client may ask for.
  const out: Record<string, unknown> = {
    client_id: clientId,
    client_id_issued_at: Math.floor(now / 1000),
    redirect_uris: record.redirectUris,
    grant_types: record.grantTypes,
    response_types: ["code"],
    token_endpoint_auth_method: method,
    scope: scope ?? [...knownScopes].join(" "),
    client_id_metadata_document_supported: config.cimdEnabled,
  };
  if (record.clientName) out.client_name = record.clientName;
  if (clientUri) out.client_uri = clientUri;
  if (jwks) out.jwks = jwks;
  if (secret) {
    out.client_secret = secret;
    out.client_secret_expires_at = 0;
  }
  return { ok: true, body: out };
}
