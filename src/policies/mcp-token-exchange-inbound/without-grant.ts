/**
 * The answer to a POST from a caller without a usable grant: the handshake and `ping` are
 * answered by the gateway (so the client's session starts and stays up), notifications are
 * accepted, and only the requests that need the upstream get connect-required.
 *
 * @see ../../../docs/mcp-transport.md#handshake-without-a-grant
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation#url-elicitation-required-error
 */
import { deferredSessions } from "../../mcp/deferred-sessions.js";
import { discoverResult, initializeResult, rpcResult, type HandshakeContext } from "../../mcp/handshake.js";
import { sessionCapabilities, type JsonRpcMessage, type McpRequestInfo } from "../../mcp/messages.js";
import { createSessionBinder, SESSION_BINDING_LABEL, type SessionBinder } from "../../handlers/mcp-proxy/session.js";
import type { GatewayServices } from "../../pipeline/services.js";
import type { GatewayContext, PipelineRequest } from "../../pipeline/types.js";
import { gatewayBase, type UpstreamEntry } from "../../oauth/registry.js";
import { connectAnswer, isRequest, rpcAnswersResponse, type ConnectRequired, type ConnectState } from "./connect-required.js";

/** The `instructions` of the gateway's own handshake answers. */
export function handshakeInstructions(services: GatewayServices, entry: UpstreamEntry, state: ConnectState): string {
  const page = `${gatewayBase(services)}/connections`;
  if (state === "admin_connect_required") {
    return `${entry.displayName} has not been connected for this gateway yet; its tools become available once an administrator connects it.`;
  }
  const what = state === "reconsent_required" ? `Your ${entry.displayName} connection has expired or was revoked` : `${entry.displayName} is not connected for your account yet`;
  return `${what}. Connect it at ${page} (or follow the link the first tool call returns); its tools become available once connected.`;
}

/** Answers a POST locally for a caller without a grant; undefined leaves it to the upstream. */
export function createWithoutGrant(services: GatewayServices) {
  let binder: SessionBinder | undefined;
  const deferred = deferredSessions(services.store);

  return async function answerWithoutGrant(
    entry: UpstreamEntry,
    state: ConnectState,
    request: PipelineRequest,
    context: GatewayContext,
    info: McpRequestInfo,
    subject: string | undefined,
    connectRequired: () => Promise<ConnectRequired>,
  ): Promise<Response | undefined> {
    if (!info.parsed) return undefined;
    const h: HandshakeContext = { serverName: context.route.operationId, instructions: handshakeInstructions(services, entry, state) };
    const accept = request.headers.get("accept");
    const init = !info.batch && info.messages[0]?.method === "initialize" ? info.messages[0] : undefined;
    if (init && isRequest(init)) {
      // The upstream cannot be asked without a credential: the gateway holds the session until
      // the first credentialed request starts the upstream's (replaying these params).
      if (subject === undefined || request.headers.has("mcp-session-id")) return undefined;
      const params = init.params ?? {};
      const raw = await deferred.open(context.route.operationId, subject, params);
      binder ??= createSessionBinder(services.secrets.deriveKey(SESSION_BINDING_LABEL));
      const sid = binder.bind(raw, context.route.operationId, subject);
      const caps = params.capabilities;
      const result = initializeResult(params.protocolVersion, h);
      sessionCapabilities.set(sid, result.protocolVersion as string, typeof caps === "object" && caps !== null ? (caps as Record<string, unknown>) : undefined);
      context.log.info({ requestId: context.requestId, upstream: entry.id, route: context.route.operationId }, "initialize answered by the gateway; upstream session deferred until connected");
      return rpcAnswersResponse([rpcResult(init.id!, result)], false, accept, { "mcp-session-id": sid });
    }
    let c: ConnectRequired | undefined;
    const client = { protocolVersion: info.protocolVersion, capabilities: info.clientCapabilities };
    const answers: Array<Record<string, unknown>> = [];
    for (const m of info.messages as JsonRpcMessage[]) {
      if (!isRequest(m)) continue;
      if (m.method === "ping") answers.push(rpcResult(m.id!, {}));
      else if (m.method === "server/discover") answers.push(rpcResult(m.id!, discoverResult(info.protocolVersion, h)));
      else answers.push(connectAnswer((c ??= await connectRequired()), { id: m.id!, method: m.method }, client));
    }
    return rpcAnswersResponse(answers, info.batch, accept);
  };
}
