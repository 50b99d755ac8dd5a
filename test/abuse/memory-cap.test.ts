/**
 * The memory attack of `memory.test.ts` by an authenticated caller: 250 connections with a valid
 * token, each declaring a 4 MiB − 1 byte body, sending all but the last byte and holding it.
 * These bodies are read, so the process-wide cap on buffered request bytes (64 MiB by default)
 * bounds them: the rest get 503, held ones time out (408) and give their bytes back. Runs with
 * `npm run test:abuse`.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { attack, CONNECTIONS, settlesBelow, startGatewayProcess, summary, type GatewayProcess } from "./gateway-process.js";

let gw: GatewayProcess;
before(async () => {
  // Held bodies time out after 3 s instead of 10 s, to keep the test short.
  gw = await startGatewayProcess({ TOLLGATE_BODY_IDLE_TIMEOUT_MS: "3000" });
});
after(async () => gw?.close());

test(`${CONNECTIONS} authenticated 4 MiB bodies held open: the 64 MiB cap answers 503, memory stays bounded`, async () => {
  const baseline = gw.rssMiB();
  const { statuses, peak } = await attack(gw, `Authorization: Bearer ${await gw.token()}\r\n`);
  const afterwards = await settlesBelow(gw, () => gw.rssMiB(), baseline + 80, 10_000);
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
