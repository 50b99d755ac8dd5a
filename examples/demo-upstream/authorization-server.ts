/**
 * The demo upstream's OAuth authorization server, built on `oidc-provider`: authorization code
 * with PKCE S256 (always required), resource indicators bound into the access token, refresh
 * tokens that rotate on every use, RFC 9207 `iss` in the authorization response, revocation,
 * Dynamic Client Registration, Client ID Metadata Documents, and an interaction that signs a
 * user in with nothing but a username and approves consent automatically.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8707 Resource Indicators
 * @see https://www.rfc-editor.org/rfc/rfc9207 Authorization Server Issuer Identification
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 */
import { randomBytes } from "node:crypto";
import type http from "node:http";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import Provider, { errors, type AdapterPayload, type Configuration, type KoaContextWithOIDC } from "oidc-provider";
import { MemoryStorage } from "./memory-adapter.js";
import { escapeHtml, htmlDocument, readBody, sendHtml } from "./http-util.js";

/** A client registered out of band (the upstream's "create an OAuth app" page). */
export interface ManualClient {
  clientId: string;
  clientSecret?: string;
  tokenEndpointAuthMethod: "client_secret_basic" | "client_secret_post" | "private_key_jwt" | "none";
  redirectUris: string[];
  /** Public keys of a `private_key_jwt` client. */
  jwks?: JWK[];
}

export interface AuthorizationServerOptions {
  issuer: string;
  /** The protected MCP resource (RFC 8707 indicator and token audience). */
  resource: string;
  /** Scopes the resource knows. */
  resourceScopes: string[];
  /** Scopes granted when an authorization request names none (RFC 6749 §3.3 default scope). */
  defaultScopes: string[];
  dcr: boolean;
  cimd: boolean;
  manualClients: ManualClient[];
  /**
   * TEST-ONLY relaxation: accept `http://127.0.0.1|localhost|[::1]` client_id URLs as Client ID
   * Metadata Documents (the spec requires https). A real authorization server must not do this.
   */
  allowHttpLoopbackClientIdUrls: boolean;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  /** Sign every interaction in as this subject without showing the login form. */
  autoLoginSubject: string | undefined;
  /** Token requests must carry `resource` (else `invalid_target`); when false the grant's is used. */
  requireResourceIndicator: boolean;
  displayName: string;
  onEvent?: (line: string) => void;
}

/** One call to the token endpoint, without any secret part of it. */
export interface TokenRequestRecord {
  grantType: string;
  status: number;
  error: string | undefined;
  clientAuth: "basic" | "post" | "private_key_jwt" | "none";
  resource: string | undefined;
  scope: string | undefined;
}

export interface AuthorizationServer {
  provider: Provider;
  storage: MemoryStorage;
  /** Token endpoint calls by `grant_type` (live object). */
  tokenRequests: Record<string, number>;
  tokenRequestLog: TokenRequestRecord[];
  /** Query parameters of every authorization request, in order. */
  authorizationRequests: Array<Record<string, string>>;
  /** Client ID Metadata Document URLs fetched, in order. */
  cimdFetches: string[];
  revocationRequests: number;
  tokenEndpointDown: boolean;
  /** Handles `<mount>/interaction/:uid[/login]`; returns false when the path is not one. */
  handleInteraction(req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<boolean>;
  addClient(client: ManualClient): void;
}

const SECRET_AUTH_METHODS = new Set(["client_secret_basic", "client_secret_post", "client_secret_jwt"]);
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);
const USERNAME_RE = /^[A-Za-z0-9._@+-]{1,64}$/;

function isHttpLoopbackUrl(id: string): boolean {
  const u = URL.parse(id);
  return !!u && u.protocol === "http:" && LOOPBACK_HOSTS.has(u.hostname) && !u.hash && !u.username;
}

/** Builds the authorization server. `mountPath` is the issuer's path ("" or "/tenant1"). */
export async function createAuthorizationServer(opts: AuthorizationServerOptions): Promise<AuthorizationServer> {
  const storage = new MemoryStorage();
  const mountPath = new URL(opts.issuer).pathname.replace(/\/$/, "");
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: "demo-1", alg: "RS256", use: "sig" };
  const event = opts.onEvent ?? (() => {});

  const state: Omit<AuthorizationServer, "provider" | "storage" | "handleInteraction" | "addClient"> = {
    tokenRequests: {},
    tokenRequestLog: [],
    authorizationRequests: [],
    cimdFetches: [],
    revocationRequests: 0,
    tokenEndpointDown: false,
  };

  const addClient = (c: ManualClient) => {
    const payload: AdapterPayload = {
      client_id: c.clientId,
      redirect_uris: c.redirectUris,
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: c.tokenEndpointAuthMethod,
    };
    if (c.clientSecret !== undefined) payload.client_secret = c.clientSecret;
    if (c.jwks) payload.jwks = { keys: c.jwks };
    storage.set("Client", c.clientId, payload, undefined);
  };
  opts.manualClients.forEach(addClient);

  if (opts.cimd && opts.allowHttpLoopbackClientIdUrls) {
    // oidc-provider only accepts https client_id URLs; the loopback http case is resolved here,
    // with the same checks the draft asks of https documents.
    storage.resolveClient = async (id) => {
      if (!isHttpLoopbackUrl(id)) return undefined;
      state.cimdFetches.push(id);
      const res = await fetch(id, {
        headers: { accept: "application/json" },
        redirect: "manual",
        signal: AbortSignal.timeout(5000),
      });
      if (res.status !== 200) throw new errors.InvalidClient("client_id metadata document fetch failed");
      const doc = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
      if (!doc || typeof doc !== "object" || Array.isArray(doc)) {
        throw new errors.InvalidClientMetadata("client_id metadata document is not a JSON object");
      }
      if (doc.client_id !== id) throw new errors.InvalidClientMetadata("client_id metadata document client_id mismatch");
      if ("client_secret" in doc || SECRET_AUTH_METHODS.has(String(doc.token_endpoint_auth_method))) {
        throw new errors.InvalidClientMetadata("client_id metadata document must not use a shared secret");
      }
      const grants = Array.isArray(doc.grant_types) ? doc.grant_types.map(String) : ["authorization_code"];
      const payload: AdapterPayload = {
        client_id: id,
        redirect_uris: Array.isArray(doc.redirect_uris) ? doc.redirect_uris.map(String) : [],
        grant_types: grants.filter((g) => g === "authorization_code" || g === "refresh_token"),
        response_types: ["code"],
        token_endpoint_auth_method: "none",
      };
      if (typeof doc.client_name === "string") payload.client_name = doc.client_name;
      return payload;
    };
  }

  const resourceInfo = {
    scope: opts.resourceScopes.join(" "),
    audience: opts.resource,
    accessTokenTTL: opts.accessTokenTtlSeconds,
    accessTokenFormat: "opaque" as const,
  };

  const configuration: Configuration = {
    adapter: storage.adapterClass(),
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString("base64url")] },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    interactions: { url: (_ctx, interaction) => `${mountPath}/interaction/${interaction.uid}` },
    responseTypes: ["code"],
    // Resource scopes are listed too so that clients may register them (DCR `scope`).
    scopes: ["openid", "offline_access", ...opts.resourceScopes],
    pkce: { required: () => true },
    rotateRefreshToken: () => true,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    expiresWithSession: async () => false,
    clientBasedCORS: () => true,
    renderError: async (ctx, out) => {
      const text = Object.entries(out)
        .map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(String(v))}</dd>`)
        .join("");
      ctx.type = "html";
      ctx.body = htmlDocument(`<h1>Authorization failed</h1><dl>${text}</dl>`);
    },
    // Registration defaults as RFC 7591 has them (a client that names no method gets a secret).
    clientDefaults: {
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
    ttl: {
      AccessToken: opts.accessTokenTtlSeconds,
      RefreshToken: opts.refreshTokenTtlSeconds,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 86_400,
      Grant: opts.refreshTokenTtlSeconds,
    },
    fetch: (url, init) => {
      state.cimdFetches.push(String(url));
      return globalThis.fetch(url, init);
    },
    // Client assertions (private_key_jwt) in every RSA, RSA-PSS and EC size.
    enabledJWA: {
      clientAuthSigningAlgValues: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"],
    },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: opts.dcr },
      // A client may only revoke or introspect its own tokens.
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      introspection: { enabled: true, allowedPolicy: async (ctx, _client, token) => token.clientId === ctx.oidc.client?.clientId },
      clientIdMetadataDocument: { enabled: opts.cimd, ack: "draft-02" },
      resourceIndicators: {
        enabled: true,
        // No implicit resource: a request that names none gets no token for the MCP server.
        defaultResource: async (_ctx, _client, oneOf) => oneOf as unknown as string,
        useGrantedResource: async () => !opts.requireResourceIndicator,
        getResourceServerInfo: async (ctx, indicator) => {
          if (indicator !== opts.resource) throw new errors.InvalidTarget();
          // The MCP authorization spec has clients send `resource` on every token request;
          // oidc-provider alone would fall back to the resource of the grant.
          if (opts.requireResourceIndicator && ctx.oidc.route === "token" && !ctx.oidc.params?.resource) {
            throw new errors.InvalidTarget("the resource parameter is required");
          }
          return resourceInfo;
        },
      },
    },
  };

  const provider = new Provider(opts.issuer, configuration);
  provider.on("server_error", (_ctx: unknown, err: Error) => event(`authorization server error: ${err.message}`));

  provider.use(async (ctx: KoaContextWithOIDC, next: () => Promise<unknown>) => {
    if (ctx.method === "POST" && ctx.path === "/token" && state.tokenEndpointDown) {
      const body = new URLSearchParams((await readBody(ctx.req)).toString("utf8"));
      const gt = body.get("grant_type") ?? "(none)";
      state.tokenRequests[gt] = (state.tokenRequests[gt] ?? 0) + 1;
      state.tokenRequestLog.push({ grantType: gt, status: 503, error: "temporarily_unavailable", clientAuth: "none", resource: undefined, scope: undefined });
      ctx.status = 503;
      ctx.body = { error: "temporarily_unavailable", error_description: "token endpoint is down" };
      return;
    }
    if (ctx.method === "GET" && ctx.path === "/auth") {
      const query = new URLSearchParams(ctx.querystring);
      state.authorizationRequests.push(Object.fromEntries(query));
      // oidc-provider refuses a request that ends up granting nothing; many real servers apply
      // a default scope instead, which is what MCP clients that send no scope rely on.
      if (!query.get("scope") && opts.defaultScopes.length) {
        query.set("scope", opts.defaultScopes.join(" "));
        ctx.querystring = query.toString();
        // oidc-provider derives its mount path from originalUrl, so keep the two consistent.
        (ctx.req as http.IncomingMessage & { originalUrl?: string }).originalUrl = `${mountPath}${ctx.url}`;
      }
    }
    await next();
    const route = ctx.oidc?.route;
    if (route === "token") {
      const body = (ctx.oidc.body ?? {}) as Record<string, unknown>;
      const gt = typeof body.grant_type === "string" ? body.grant_type : "(none)";
      state.tokenRequests[gt] = (state.tokenRequests[gt] ?? 0) + 1;
      const authz = ctx.get("authorization");
      const answer = (ctx.body ?? {}) as Record<string, unknown>;
      state.tokenRequestLog.push({
        grantType: gt,
        status: ctx.status,
        error: typeof answer.error === "string" ? answer.error : undefined,
        clientAuth: /^basic /i.test(authz)
          ? "basic"
          : typeof body.client_secret === "string"
            ? "post"
            : typeof body.client_assertion === "string"
              ? "private_key_jwt"
              : "none",
        resource: typeof body.resource === "string" ? body.resource : undefined,
        scope: typeof body.scope === "string" ? body.scope : undefined,
      });
      event(`token ${gt} -> ${ctx.status}`);
    } else if (route === "revocation") {
      state.revocationRequests += 1;
    }
  });

  async function handleInteraction(req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<boolean> {
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(path.slice(mountPath.length));
    if (!path.startsWith(`${mountPath}/interaction/`) || !m) return false;
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== m[1]) throw new errors.InvalidRequest("interaction mismatch");
    if (m[2] && req.method === "POST") {
      const form = new URLSearchParams((await readBody(req)).toString("utf8"));
      const username = (form.get("username") ?? "").trim();
      if (!USERNAME_RE.test(username)) {
        sendHtml(res, 400, loginPage(details.uid, mountPath, opts.displayName, "Enter a username (letters, digits, . _ @ + -)."));
        return true;
      }
      event(`login ${username}`);
      await provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
      return true;
    }
    if (req.method !== "GET") {
      sendHtml(res, 405, "<p>Method not allowed.</p>");
      return true;
    }
    if (details.prompt.name === "login") {
      if (opts.autoLoginSubject) {
        await provider.interactionFinished(req, res, { login: { accountId: opts.autoLoginSubject } }, { mergeWithLastSubmission: false });
      } else {
        sendHtml(res, 200, loginPage(details.uid, mountPath, opts.displayName));
      }
      return true;
    }
    if (details.prompt.name === "consent") {
      await approveConsent(provider, req, res, details);
      return true;
    }
    sendHtml(res, 400, "<p>Unsupported interaction.</p>");
    return true;
  }

  return {
    provider,
    storage,
    get tokenRequests() {
      return state.tokenRequests;
    },
    get tokenRequestLog() {
      return state.tokenRequestLog;
    },
    get authorizationRequests() {
      return state.authorizationRequests;
    },
    get cimdFetches() {
      return state.cimdFetches;
    },
    get revocationRequests() {
      return state.revocationRequests;
    },
    get tokenEndpointDown() {
      return state.tokenEndpointDown;
    },
    set tokenEndpointDown(v: boolean) {
      state.tokenEndpointDown = v;
    },
    handleInteraction,
    addClient,
  };
}

/** Grants exactly what the client asked for (the demo has no consent screen). */
async function approveConsent(
  provider: Provider,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  interaction: Awaited<ReturnType<Provider["interactionDetails"]>>,
): Promise<void> {
  const accountId = interaction.session?.accountId;
  const clientId = String(interaction.params.client_id);
  const grant = interaction.grantId
    ? await provider.Grant.find(interaction.grantId)
    : new provider.Grant({ accountId, clientId });
  if (!grant) throw new errors.AccessDenied("grant not found");
  const details = interaction.prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(" "));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(" "));
  }
  const grantId = await grant.save();
  const consent = interaction.grantId ? {} : { grantId };
  await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

function loginPage(uid: string, mountPath: string, name: string, error?: string): string {
  const action = escapeHtml(`${mountPath}/interaction/${uid}/login`);
  return `<h1>Sign in to ${escapeHtml(name)}</h1>
<p>This is a demo authorization server: any username signs you in, no password needed.</p>
${error ? `<p role="alert">${escapeHtml(error)}</p>` : ""}
<form method="post" action="${action}">
  <label>Username <input name="username" autocomplete="username" autofocus required></label>
  <button type="submit">Sign in</button>
</form>`;
}
