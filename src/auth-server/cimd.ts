/**
 * URL client ids: the client's `client_id` is an https URL serving its metadata as JSON (a
 * Client ID Metadata Document). The gateway fetches it (SSRF-guarded after DNS resolution, no
 * redirects, 5 s, 10 KiB), checks it names itself, and caches it (Cache-Control, 1 min–1 day).
 *
 * @see https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#client-id-metadata-documents
 */
import dns from "node:dns";
import tls from "node:tls";
import { Agent, request } from "undici";
import { jwksProblem } from "./client-assertion.js";
import type { GatewayServices } from "../pipeline/services.js";
import { assertUrlAllowed, classifyAddress } from "../oauth/ssrf.js";
import { TtlLru } from "../policies/shared/lru.js";
import { redirectUriProblem } from "./clients.js";
import type { OAuthClient } from "./types.js";

const MAX_BYTES = 10 * 1024;
const TIMEOUT_MS = 5_000;
const MIN_CACHE_S = 60;
const MAX_CACHE_S = 86_400;
const DEFAULT_CACHE_S = 300;

interface CimdState {
  ca: string[];
  agent: Agent | undefined;
  cache: TtlLru<OAuthClient>;
  inflight: Map<string, Promise<OAuthClient | undefined>>;
}
const states = new WeakMap<GatewayServices, CimdState>();

function state(services: GatewayServices): CimdState {
  let s = states.get(services);
  if (!s) states.set(services, (s = { ca: [], agent: undefined, cache: new TtlLru(1000), inflight: new Map() }));
  return s;
}

/**
 * Adds a CA certificate (PEM) trusted, in addition to the system roots, when fetching client
 * metadata documents (for organisations whose clients publish behind a private CA).
 */
export function trustClientMetadataCa(services: GatewayServices, pem: string): void {
  const s = state(services);
  s.ca.push(pem);
  void s.agent?.close();
  s.agent = undefined;
}

/** Closes the connection pool used for metadata fetches. */
export async function closeCimd(services: GatewayServices): Promise<void> {
  const s = states.get(services);
  await s?.agent?.close().catch(() => {});
  if (s) s.agent = undefined;
}

/** True when a client id is a URL client id (https with a path). */
export function isCimdClientId(clientId: string): boolean {
  return clientId.startsWith("https://");
}

/** Checks the form of a URL client id; returns a reason or undefined. */
export function cimdUrlProblem(clientId: string): string | undefined {
  let u: URL;
  try {
    u = new URL(clientId);
  } catch {
    return "not a URL";
  }
  if (u.protocol !== "https:") return "must be https";
  if (u.username || u.password) return "must not contain credentials";
  if (u.hash || clientId.includes("#")) return "must not contain a fragment";
  if (u.pathname === "/" || u.pathname === "") return "must have a path";
  if (/\/\.\.?(\/|$)/.test(clientId.slice(u.origin.length).split("?")[0]!)) return "must not contain dot segments";
  if (u.href !== clientId) return "must be in normalized form";
  return undefined;
}

type LookupCb = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

function agentFor(services: GatewayServices): Agent {
  const s = state(services);
  if (s.agent) return s.agent;
  const allowed = new Set(services.settings.allowedUpstreamHosts.map((h) => h.toLowerCase()));
  // Re-check at connect time what DNS answers, so the address checked is the address used.
  const lookup = (hostname: string, options: dns.LookupOptions, cb: LookupCb): void => {
    dns.lookup(hostname, { ...options, all: true, verbatim: true }, (err, addresses) => {
      if (err) return cb(err, "", 0);
      const host = hostname.toLowerCase();
      const bad = addresses.find((a) => {
        const c = classifyAddress(a.address);
        return c === "forbidden" || (c !== "public" && !allowed.has(host));
      });
      if (bad) return cb(Object.assign(new Error("client metadata host resolves to a refused address"), { code: "EBLOCKED" }), "", 0);
      if (options.all) cb(null, addresses);
      else cb(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
  s.agent = new Agent({
    connect: {
      lookup: lookup as never,
      timeout: TIMEOUT_MS,
      ...(s.ca.length ? { ca: [...tls.rootCertificates, ...s.ca] } : {}),
    },
    keepAliveTimeout: 5_000,
  });
  return s.agent;
}

function cacheSeconds(header: string | string[] | undefined): number {
  const v = Array.isArray(header) ? header.join(",") : (header ?? "");
  if (/no-store|no-cache/i.test(v)) return MIN_CACHE_S;
  const m = /max-age=(\d+)/i.exec(v);
  const n = m ? Number(m[1]) : DEFAULT_CACHE_S;
  return Math.min(MAX_CACHE_S, Math.max(MIN_CACHE_S, n));
}

/** Validates a fetched document against its URL; returns the client or a reason. */
export function clientFromDocument(clientId: string, doc: unknown): OAuthClient | string {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return "document is not a JSON object";
  const m = doc as Record<string, unknown>;
  if (m.client_id !== clientId) return "client_id in the document differs from its URL";
  if (m.client_secret !== undefined || m.client_secret_expires_at !== undefined) return "document must not carry a client secret";
  const method = m.token_endpoint_auth_method ?? "none";
  if (method !== "none" && method !== "private_key_jwt") return "token_endpoint_auth_method must be none or private_key_jwt for URL client ids";
  if (method === "private_key_jwt") {
    if (m.jwks === undefined) return "a private_key_jwt client must publish its keys inline as jwks (jwks_uri is not supported)";
    const why = jwksProblem(m.jwks);
    if (why) return why;
  }
  const uris = m.redirect_uris;
  if (!Array.isArray(uris) || uris.length === 0 || uris.length > 10) return "redirect_uris must list 1 to 10 URIs";
  for (const u of uris) if (redirectUriProblem(u)) return "redirect_uris holds an unacceptable URI";
  const grants = m.grant_types ?? ["authorization_code", "refresh_token"];
  if (!Array.isArray(grants) || !grants.includes("authorization_code")) return "grant_types must include authorization_code";
  const name = typeof m.client_name === "string" ? m.client_name.slice(0, 200) : undefined;
  let clientUri: string | undefined;
  try {
    if (typeof m.client_uri === "string" && new URL(m.client_uri).protocol === "https:") clientUri = m.client_uri;
  } catch {
    clientUri = undefined;
  }
  return {
    clientId,
    kind: "cimd",
    clientName: name,
    clientUri,
    redirectUris: uris as string[],
    grantTypes: (grants as unknown[]).filter((g): g is string => g === "authorization_code" || g === "refresh_token"),
    tokenEndpointAuthMethod: method,
    secretHash: undefined,
    jwks: method === "private_key_jwt" ? (m.jwks as OAuthClient["jwks"]) : undefined,
    scope: typeof m.scope === "string" ? m.scope : undefined,
  };
}

async function fetchDocument(services: GatewayServices, clientId: string): Promise<OAuthClient | undefined> {
  const why = cimdUrlProblem(clientId);
  const log = services.log;
  if (why) {
    log.info({ reason: why }, "URL client id refused");
    return undefined;
  }
  const url = new URL(clientId);
  try {
    await assertUrlAllowed(url, {
      allowPrivate: false,
      allowedHosts: services.settings.allowedUpstreamHosts.map((h) => h.toLowerCase()),
    });
    const res = await request(url, {
      method: "GET",
      headers: { accept: "application/json" },
      dispatcher: agentFor(services),
      headersTimeout: TIMEOUT_MS,
      bodyTimeout: TIMEOUT_MS,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_BYTES) {
        res.body.destroy();
        throw new Error("client metadata document too large");
      }
      chunks.push(chunk as Buffer);
    }
    if (res.statusCode !== 200) throw new Error(`client metadata document answered ${res.statusCode}`);
    const type = String(res.headers["content-type"] ?? "");
    if (!/^application\/([a-z.+-]*\+)?json\b/i.test(type)) throw new Error("client metadata document is not JSON");
    const client = clientFromDocument(clientId, JSON.parse(Buffer.concat(chunks).toString("utf8")));
    if (typeof client === "string") throw new Error(client);
    state(services).cache.set(clientId, client, services.now() + cacheSeconds(res.headers["cache-control"]) * 1000);
    log.info({ clientId, clientName: client.clientName }, "client metadata document loaded");
    return client;
  } catch (err) {
    const reason = (err as { details?: { reason?: unknown } }).details?.reason ?? (err as Error).message;
    log.info({ clientId, reason }, "client metadata document refused");
    return undefined;
  }
}

/** The client behind a URL client id (cached; concurrent lookups share one fetch). */
export async function resolveCimdClient(services: GatewayServices, clientId: string): Promise<OAuthClient | undefined> {
  const s = state(services);
  const hit = s.cache.get(clientId, services.now());
  if (hit) return hit;
  let p = s.inflight.get(clientId);
  if (!p) {
    p = fetchDocument(services, clientId).finally(() => s.inflight.delete(clientId));
    s.inflight.set(clientId, p);
  }
  return p;
}
