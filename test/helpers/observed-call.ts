/**
 * One MCP request's observation fed as the gateway and the proxy handler feed it, for the audit
 * trail's tests: a `tools/call` (id 7, tool `echo`) that was forwarded, whose answer came from the
 * upstream as JSON. The caller hands the answer over (`takeWatcher(upstreamBody)!.whole(bytes)`),
 * as the edge does when it sends a body whole.
 *
 * Run as a script (`node --import tsx observed-call.ts <log file>`), it observes one such call,
 * logging to the file, and exits at once, in the turn the answer came.
 */
import { PassThrough } from "node:stream";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { createLogger, type Logger } from "../../src/log.js";
import { createAudit, type Audit } from "../../src/audit/audit.js";
import { McpObservation } from "../../src/audit/observation.js";
import { HeaderMap } from "../../src/pipeline/header-map.js";
import { ClientDisconnect, IncomingRequest } from "../../src/pipeline/types.js";
import { takeWatcher } from "../../src/pipeline/node-body.js";

export const OBSERVED_ANSWER = '{"jsonrpc":"2.0","id":7,"result":{"content":[]}}';

export function observedCall(log: Logger, started: number): { obs: McpObservation; upstreamBody: PassThrough; audit: Audit } {
  const body = Buffer.from('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{}}}');
  const request = new IncomingRequest("POST", "http://gw.test/mcp", new HeaderMap(), body, new ClientDisconnect(), "/mcp");
  const deps = { audit: createAudit({ log }), metrics: undefined, upstreamOf: (op: string) => op };
  const obs = new McpObservation(deps, "route", "POST", "/mcp", "req-1", request, started, () => false);
  obs.forwarding(body);
  obs.answered();
  const upstreamBody = new PassThrough();
  obs.tapUpstreamBody(upstreamBody, "application/json");
  void obs.finish(new Response(null, { status: 200, headers: { "content-type": "application/json" } }), request);
  return { obs, upstreamBody, audit: deps.audit };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { upstreamBody } = observedCall(createLogger({ file: process.argv[2]! }), performance.now());
  takeWatcher(upstreamBody)!.whole(Buffer.from(OBSERVED_ANSWER));
  process.exit(0);
}
