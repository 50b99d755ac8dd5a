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
import { attack, CONNECTIONS, settlesBelow, startGatewayProcess, summary, type GatewayProcess } from "./gateway-process.js";

let gw: GatewayProcess;
before(async () => {
  gw = await startGatewayProcess();
});
after(async () => gw?.close());

test(`${CONNECTIONS} unauthenticated 4 MiB bodies: 401 each, memory flat, and back afterwards`, async () => {
  const baseline = gw.rssMiB();
  const { statuses, peak } = await attack(gw, "");
  // What stays after the attack is memory the allocator keeps from the drained bodies' buffers, not
  // live data: measured +32 to +75 MiB across runs on a 2-vCPU host (it was +1 GB, never returned,
  // before the fix). The bound leaves room for that and still catches any per-connection buffering.
  const afterwards = await settlesBelow(gw, () => gw.rssMiB(), baseline + 96, 20_000);
  console.log(`unauthenticated: RSS ${baseline.toFixed(0)} MiB before, ${peak.toFixed(0)} peak, ${afterwards.toFixed(0)} after`);
  assert.deepEqual([...new Set(statuses)], [401], `statuses: ${summary(statuses)}`);
  assert.ok(peak - baseline < 100, `peak grew by ${(peak - baseline).toFixed(0)} MiB (was ~1 GB before the fix)`);
  assert.ok(afterwards - baseline < 96, `RSS stayed ${(afterwards - baseline).toFixed(0)} MiB above the start`);
});

