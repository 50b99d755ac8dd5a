/**
 * Memory exhaustion before authentication, with the finding's numbers: 250 connections each
 * declaring a 4 MiB − 1 byte body, sending all but the last byte and holding it. Before, the
 * gateway buffered every body before routing and authentication and went from 119 MB to 1.1 GB,
 * and the memory did not come back. Now an unauthenticated body is never read (401 at once),
 * and authenticated bodies are bounded by the process-wide cap (64 MiB by default: the rest get
 * 503) and the body idle timeout. Runs with `npm run test:abuse`.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { rawConnect, type RawConnection } from "../helpers/raw-socket.js";
import { sampleMax, startGatewayProcess, type GatewayProcess } from "./gateway-process.js";

const MiB = 1024 * 1024;
const CONNECTIONS = 250;
const DECLARED = 4 * MiB - 1;

let gw: GatewayProcess;
before(async () => {
  gw = await startGatewayProcess();
});
after(async () => gw?.close());

/**
 * Polls `f` until it is at most `limit` or `ms` passed, with some ordinary traffic meanwhile: an
 * idle Node process runs no garbage collection, so freed buffers come back only once it works.
 */
async function settlesBelow(f: () => number, limit: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let v = f();
  while (v > limit && Date.now() < deadline) {
    await Promise.all(Array.from({ length: 20 }, () => fetch(`http://127.0.0.1:${gw.port}/healthz`).then((r) => r.arrayBuffer())));
    await new Promise((r) => setTimeout(r, 250));
    v = f();
  }
  return v;
}

function summary(statuses: number[]): string {
  const n = new Map<number, number>();
  for (const s of statuses) n.set(s, (n.get(s) ?? 0) + 1);
  return [...n].map(([s, c]) => `${c} × ${s || "closed"}`).join(", ");
}

async function attack(authorization: string): Promise<{ statuses: number[]; peak: number }> {
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

test(`${CONNECTIONS} unauthenticated 4 MiB bodies: 401 each, memory flat, and back afterwards`, async () => {
  const baseline = gw.rssMiB();
  const { statuses, peak } = await attack("");
  const afterwards = await settlesBelow(() => gw.rssMiB(), baseline + 48, 20_000);
  console.log(`unauthenticated: RSS ${baseline.toFixed(0)} MiB before, ${peak.toFixed(0)} peak, ${afterwards.toFixed(0)} after`);
  assert.deepEqual([...new Set(statuses)], [401], `statuses: ${summary(statuses)}`);
  assert.ok(peak - baseline < 100, `peak grew by ${(peak - baseline).toFixed(0)} MiB (was ~1 GB before the fix)`);
  assert.ok(afterwards - baseline < 48, `RSS stayed ${(afterwards - baseline).toFixed(0)} MiB above the start`);
});

