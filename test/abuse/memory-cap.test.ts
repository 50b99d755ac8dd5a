/**
 * The memory attack of `memory.test.ts` by an authenticated caller: 250 connections with a valid
 * token, each declaring a 4 MiB − 1 byte body, sending all but the last byte and holding it.
 * These bodies are read, so the process-wide cap on buffered request bytes (64 MiB by default)
 * bounds them: the rest get 503, held ones time out (408) and give their bytes back. Runs with
 * `npm run test:abuse`.
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
  // Held bodies time out after 3 s instead of 10 s, to keep the test short.
  gw = await startGatewayProcess({ TOLLGATE_BODY_IDLE_TIMEOUT_MS: "3000" });
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

test(`${CONNECTIONS} authenticated 4 MiB bodies held open: the 64 MiB cap answers 503, memory stays bounded`, async () => {
  const baseline = gw.rssMiB();
  const { statuses, peak } = await attack(`Authorization: Bearer ${await gw.token()}\r\n`);
  const afterwards = await settlesBelow(() => gw.rssMiB(), baseline + 80, 10_000);
  const count = (s: number) => statuses.filter((x) => x === s).length;
  console.log(
    `authenticated: ${summary(statuses)} (408: held bodies timed out); ` +
      `RSS ${baseline.toFixed(0)} MiB before, ${peak.toFixed(0)} peak, ${afterwards.toFixed(0)} after`,
  );
  // At most 16 bodies of 4 MiB fit under the cap at once; the others are refused. Held bodies
  // time out (408) and give their share back, so later ones may be admitted in turn.
  assert.ok(count(503) > 0, "the cap refused bodies");
  assert.equal(count(503) + count(408), CONNECTIONS, `statuses: ${summary(statuses)}`);
  assert.ok(peak - baseline < 192, `peak grew by ${(peak - baseline).toFixed(0)} MiB (was ~1 GB before the fix)`);
  // Freed buffers go back to the allocator, which may keep the pages: RSS stays within the
  // bound the cap sets instead of returning to the start. The process keeps serving.
  assert.ok(afterwards - baseline < 192, `RSS stayed ${(afterwards - baseline).toFixed(0)} MiB above the start`);
  const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" });
  const res = await fetch(`http://127.0.0.1:${gw.port}/mcp/jwt`, {
    method: "POST",
    headers: { authorization: `Bearer ${await gw.token()}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
    body,
  });
  assert.equal(res.status, 200, await res.text());
});
