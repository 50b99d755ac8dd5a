/**
 * `mcp-token-exchange-inbound`: puts the caller's own upstream credential (or the shared one) on
 * the upstream request, asks for a connection when there is none, and recovers from upstream
 * 401/403 answers (refresh and retry once; step-up for `insufficient_scope`). A refreshed token
 * the upstream refuses again drops the grant and asks the user to connect again.
 *
 * Per request on the warm path: one in-memory cache lookup, no store round trip, no decryption.
 */
import { randomUUID } from "node:crypto";
import { GatewayError } from "../../errors.js";
import { mcpRequestInfo, type JsonRpcMessage } from "../../mcp/messages.js";
import { deriveRequest, type GatewayContext, type PipelineRequest, type InboundPolicy, type UpstreamAuthHooks } from "../../pipeline/types.js";
import type { GatewayServices } from "../../pipeline/services.js";
import { bearerChallenge } from "../../oauth/challenge.js";
import type { Refresher, TokenResult } from "../../oauth/grants.js";
import { entryGrantKey, mintConnectUrl, upstreamOAuthState, type UpstreamEntry } from "../../oauth/registry.js";
import { stepUpScopes } from "../../oauth/scopes.js";
import {
  connectRequiredProblem,
  connectRequiredResponse,
  inputRequestKey,
  REQUEST_STATE_PREFIX,
  type ConnectRequired,
  type ConnectState,
} from "./connect-required.js";
import { createWithoutGrant } from "./without-grant.js";
import { elicitations, sessionKey } from "../../mcp/elicitations.js";
import { createSessionBinder, SESSION_BINDING_LABEL, type SessionBinder } from "../../handlers/mcp-proxy/session.js";

const OWN_STATE_BYTES = Buffer.from(`"${REQUEST_STATE_PREFIX}`);

/** Removes the gateway's own MRTR `requestState`/`inputResponses` from a retried request. */
async function stripOwnRetryState(request: PipelineRequest, context: GatewayContext, upstreamId: string): Promise<PipelineRequest> {
  if (request.method !== "POST") return request;
  // Hot path: only parse when the body can contain one of our request states.
  const raw = await request.rawBytes();
  if (!Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).includes(OWN_STATE_BYTES)) return request;
  const info = await mcpRequestInfo(request, context);
  const ours = (m: JsonRpcMessage) => typeof m.params?.requestState === "string" && m.params.requestState.startsWith(REQUEST_STATE_PREFIX);
  if (!info.parsed || !info.messages.some(ours)) return request;
  const key = inputRequestKey(upstreamId);
  const cleaned = info.messages.map((m) => {
    if (!ours(m)) return m;
    const { requestState: _state, inputResponses, ...params } = m.params as Record<string, unknown>;
    const rest = { ...((inputResponses as Record<string, unknown> | undefined) ?? {}) };
    delete rest[key];
    return { ...m, params: Object.keys(rest).length ? { ...params, inputResponses: rest } : params };
  });
  const bytes = new TextEncoder().encode(JSON.stringify(info.batch ? cleaned : cleaned[0]));
  return deriveRequest(request, { rawBody: bytes });
}

/** Builds the per-request logic for one upstream. */
export function tokenExchangePolicy(services: GatewayServices, entryOf: () => UpstreamEntry): InboundPolicy {
  const state = upstreamOAuthState(services);
  const grants = state.grants;
  const withoutGrant = createWithoutGrant(services);
  const completions = elicitations(services.store);
  let binder: SessionBinder | undefined;

  /**
   * Remembers an elicitation sent on a session (one this caller holds on this route), so the
   * session's stream gets `notifications/elicitation/complete` once the user has connected.
   */
  async function remember(c: ConnectRequired, request: PipelineRequest, context: GatewayContext, subject: string): Promise<void> {
    const sid = request.method === "POST" ? request.headers.get("mcp-session-id") : null;
    if (sid === null) return;
    const routeId = context.route.operationId;
    binder ??= createSessionBinder(services.secrets.deriveKey(SESSION_BINDING_LABEL));
    if (binder.unbind(sid, routeId, subject) === undefined) return;
    try {
      await completions.issued(c.upstreamId, subject, sessionKey(routeId, subject, sid), c.elicitationId);
    } catch (err) {
      context.log.warn({ requestId: context.requestId, upstream: c.upstreamId, err }, "could not remember the elicitation for its completion notification");
    }
  }

  const refresherFor = (entry: UpstreamEntry): Refresher => (g) =>
    entry.oauth.refresh({
      issuer: g.meta.issuer,
      clientId: g.meta.clientId,
      refreshToken: g.secret.refreshToken!,
      resource: g.meta.resource,
    });

  type Why = { state: ConnectState; reason: "authenticating" | "reconsent_required" | "step_up"; scopes?: string[]; stepUps?: number };

  /** Mints the connect link (user mode) and describes what the client is told. */
  async function describe(entry: UpstreamEntry, request: PipelineRequest, context: GatewayContext, subject: string | undefined, why: Why): Promise<ConnectRequired> {
    const shared = entry.authMode === "shared-oauth";
    let authUrl: string | undefined;
    if (!shared && subject !== undefined) {
      authUrl = await mintConnectUrl(services, entry, {
        subject,
        operationId: context.route.operationId,
        scopes: why.scopes,
        reason: why.reason,
        stepUps: why.stepUps ?? 0,
      });
    }
    const c: ConnectRequired = {
      state: shared ? "admin_connect_required" : why.state,
      upstreamId: entry.id,
      displayName: entry.displayName,
      operationId: context.route.operationId,
      authMode: entry.authMode,
      authUrl,
      elicitationId: randomUUID(),
    };
    context.log.info(
      { requestId: context.requestId, upstream: entry.id, state: c.state, route: context.route.operationId },
      "upstream connection required",
    );
    if (authUrl !== undefined && subject !== undefined) await remember(c, request, context, subject);
    return c;
  }

  async function connectRequired(
    entry: UpstreamEntry,
    request: PipelineRequest,
    context: GatewayContext,
    subject: string | undefined,
    why: Why,
  ): Promise<Response> {
    const c = await describe(entry, request, context, subject, why);
    if (request.method !== "POST") return connectRequiredProblem(c, context.requestId);
    return connectRequiredResponse(c, await mcpRequestInfo(request, context), request.headers.get("accept"));
  }

  async function missingState(key: string): Promise<ConnectState> {
    return (await grants.wasDropped(key)) ? "reconsent_required" : "authenticating";
  }

  function hooks(
    entry: UpstreamEntry,
    request: PipelineRequest,
    context: GatewayContext,
    subject: string | undefined,
    key: string,
    usedToken: string | undefined,
  ): UpstreamAuthHooks {
    let current = usedToken;
    const reconnect = () => connectRequired(entry, request, context, subject, { state: "reconsent_required", reason: "reconsent_required" });
    const recover = async (r: TokenResult): Promise<string | Response> => {
      if (r.kind === "ok") {
        current = r.token;
        return `Bearer ${r.token}`;
      }
      const s: ConnectState = r.kind === "reconsent" ? "reconsent_required" : await missingState(key);
      return connectRequired(entry, request, context, subject, { state: s, reason: s === "reconsent_required" ? "reconsent_required" : "authenticating" });
    };
    return {
      async onUnauthorized(challenge) {
        entry.oauth.noteChallenge(challenge.wwwAuthenticate);
        if (current === undefined) {
          const s = await missingState(key);
          return connectRequired(entry, request, context, subject, { state: s, reason: "authenticating" });
        }
        if (challenge.retried) {
          // The token just refreshed (or replaced by another request) is refused too: the grant
          // is of no use any more, whatever the upstream's reason. Never pass its challenge on.
          // (When another request has replaced the grant meanwhile, it is kept: 502 this time.)
          return (await grants.dropRejected(key, current, "upstream refused the refreshed token")) ? reconnect() : undefined;
        }
        return recover(await grants.refreshAfterRejection(key, current, refresherFor(entry)));
      },
      async onForbidden(challenge) {
        const c = bearerChallenge(challenge.wwwAuthenticate);
        if (c.error !== "insufficient_scope" || current === undefined) return undefined;
        entry.oauth.noteChallenge(challenge.wwwAuthenticate);
        const g = await grants.read(key).catch(() => undefined);
        if (!g) return undefined;
        const scopes = stepUpScopes({ requested: g.meta.scopes, challengeScope: c.scope, stepUps: g.meta.stepUps });
        if (!scopes) {
          context.log.warn({ upstream: entry.id, stepUps: g.meta.stepUps }, "upstream still refuses for insufficient scope; passing its answer on");
          return undefined;
        }
        if (entry.authMode === "shared-oauth") {
          context.log.warn({ upstream: entry.id, scopes }, "shared upstream connection needs more scopes; an administrator must connect it again");
          return undefined;
        }
        return connectRequired(entry, request, context, subject, {
          state: "authenticating",
          reason: "step_up",
          scopes,
          stepUps: g.meta.stepUps + 1,
        });
      },
    };
  }

  return async function mcpTokenExchange(request, context) {
    const entry = entryOf();
    const shared = entry.authMode === "shared-oauth";
    const subject = request.user?.sub;
    if (!shared && !subject) {
      throw new GatewayError("authentication_required", 401, "This route needs an authenticated caller to find their upstream connection.");
    }
    const key = entryGrantKey(entry, subject);
    const r = await grants.token(key, refresherFor(entry));
    if (r.kind === "ok") {
      context.upstreamHeaders.authorization = `Bearer ${r.token}`;
      context.upstreamAuth = hooks(entry, request, context, subject, key, r.token);
      return stripOwnRetryState(request, context, entry.id);
    }
    const s: ConnectState = r.kind === "reconsent" ? "reconsent_required" : await missingState(key);
    const why: Why = { state: s, reason: s === "reconsent_required" ? "reconsent_required" : "authenticating" };
    if (request.method === "POST") {
      const info = await mcpRequestInfo(request, context);
      const local = await withoutGrant(entry, shared ? "admin_connect_required" : s, request, context, info, subject, () => describe(entry, request, context, subject, why));
      if (local) return local;
    }
    // GET/DELETE, unparseable bodies, an `initialize` the gateway cannot hold: the upstream
    // decides without a credential; its 401 becomes the connect-required answer.
    context.upstreamAuth = hooks(entry, request, context, subject, key, undefined);
    return request;
  };
}
