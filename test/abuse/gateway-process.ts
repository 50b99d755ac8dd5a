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
import { rawConnect, type RawConnection } from "../helpers/raw-socket.js";

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

const MiB = 1024 * 1024;
/** The finding's numbers: 250 connections, each declaring a 4 MiB − 1 byte body. */
export const CONNECTIONS = 250;
const DECLARED = 4 * MiB - 1;

/**
 * Polls `f` until it is at most `limit` or `ms` passed, with some ordinary traffic meanwhile: an
 * idle Node process runs no garbage collection, so freed buffers come back only once it works.
 */
export async function settlesBelow(gw: GatewayProcess, f: () => number, limit: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let v = f();
  while (v > limit && Date.now() < deadline) {
    await Promise.all(Array.from({ length: 20 }, () => fetch(`http://127.0.0.1:${gw.port}/healthz`).then((r) => r.arrayBuffer())));
    await new Promise((r) => setTimeout(r, 250));
    v = f();
  }
  return v;
}

export function summary(statuses: number[]): string {
  const n = new Map<number, number>();
  for (const s of statuses) n.set(s, (n.get(s) ?? 0) + 1);
  return [...n].map(([s, c]) => `${c} × ${s || "closed"}`).join(", ");
}

/**
 * Opens {@link CONNECTIONS} connections that each send all but the last byte of a 4 MiB − 1 byte
 * body to `/mcp/jwt` and hold it; returns every answer's status (0: closed) and the peak RSS.
 */
export async function attack(gw: GatewayProcess, authorization: string): Promise<{ statuses: number[]; peak: number }> {
  const body = Buffer.alloc(DECLARED - 1, 0x20); // one buffer, written by every connection
  const conns: RawConnection[] = [];
  for (let i = 0; i < CONNECTIONS; i++) conns.push(await rawConnect(gw.port));
  const peak = sampleMax(() => gw.rssMiB());
  const head =
    `POST /mcp/jwt HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nContent-Type: application/json\r\n` +
    `Accept: application/json, text/event-stream\r\n${authorization}Content-Length: ${DECLARED}\r\n\r\n`;
  await Promise.all(conns.map(async (c) => (await c.write(head)) && c.write(body)));
  const statuses = await Promise.all(conns.map((c) => c.answer.then((a) => a.status, () => 0)));
  const max = peak.stop();
  for (const c of conns) c.socket.destroy();
  await Promise.all(conns.map((c) => c.closed));
  return { statuses, peak: max };
}
