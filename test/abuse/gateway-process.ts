/**
 * A gateway started the way an operator starts it (`tollgate start`, one process) in front of a
 * real MCP server, with a JWT route and an open route, for attacks whose numbers are about the
 * process: its memory (RSS from /proc) and the connections it keeps.
 */
import fs from "node:fs";
import type { ChildProcess } from "node:child_process";
import { spawnCli, waitForLine, exitOf } from "../helpers/cli.js";
import { startMcpTestServer, type McpTestServer } from "../fixtures/mcp-servers.js";
import { proxyProject } from "../e2e/mcp-proxy-helpers.js";
import { makeKey, sign, startJwksServer, type JwksServer, type TestKey } from "../helpers/jwks-fixture.js";

const ISSUER = "https://idp.test/";
const AUDIENCE = "tollgate-abuse";

export interface GatewayProcess {
  port: number;
  pid: number;
  /** A valid token for the JWT route `/mcp/jwt`. */
  token(): Promise<string>;
  /** Resident memory of the gateway process, in MiB. */
  rssMiB(): number;
  /** Open file descriptors of the gateway process. */
  openFds(): number;
  close(): Promise<void>;
}

export async function startGatewayProcess(env: Record<string, string> = {}): Promise<GatewayProcess> {
  const upstream: McpTestServer = await startMcpTestServer({ mode: "stateless" });
  const key: TestKey = await makeKey("k1", "ES256");
  const jwks: JwksServer = await startJwksServer([key]);
  const jwt = {
    name: "jwt",
    policyType: "open-id-jwt-auth-inbound",
    handler: { module: "$import(@zuplo/runtime)", export: "OpenIdJwtInboundPolicy", options: { issuer: ISSUER, audience: AUDIENCE, jwkUrl: jwks.url } },
  };
  const dir = await proxyProject(
    [
      { path: "/mcp/jwt", options: { rewritePattern: upstream.url }, inbound: ["jwt"] },
      { path: "/mcp/open", options: { rewritePattern: upstream.url } },
    ],
    [jwt],
  );
  const child: ChildProcess = spawnCli(["start", "--project", dir, "--port", "0", "--workers", "1"], {
    TOLLGATE_STORE: "memory:",
    TOLLGATE_LOG_LEVEL: "warn",
    ...env,
  });
  const [, url] = await waitForLine(child, /serving \d+ route\(s\) at (http:\/\/127\.0\.0\.1:\d+)/, 60_000);
  const pid = child.pid!;
  return {
    port: Number(new URL(url!).port),
    pid,
    token: () => sign(key, { iss: ISSUER, aud: AUDIENCE, sub: "mallory" }),
    rssMiB: () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024,
    openFds: () => fs.readdirSync(`/proc/${pid}/fd`).length,
    async close() {
      child.kill("SIGTERM");
      await exitOf(child);
      await jwks.close();
      await upstream.close();
    },
  };
}

/** Samples `f` every 100 ms until stopped; returns the largest value seen. */
export function sampleMax(f: () => number): { stop: () => number } {
  let max = f();
  const timer = setInterval(() => (max = Math.max(max, f())), 100);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(max, f());
    },
  };
}
