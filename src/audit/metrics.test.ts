import assert from "node:assert/strict";
import { test } from "node:test";
import { Registry } from "prom-client";
import { AuditEvents } from "./events.js";
import { createMcpMetrics, MAX_TIMED_NAMES } from "./metrics.js";

/** Sum of the samples of `name` whose labels include `labels`. */
async function sample(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  let sum = 0;
  for (const line of (await registry.metrics()).split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

const completed = (name: string, gatewayMs: number, upstreamMs: number | undefined) => ({
  event: AuditEvents.capabilityCompleted,
  operationId: "r",
  mcpMethod: "tools/call",
  capabilityName: name,
  outcome: "success" as const,
  gatewayLatencyMs: gatewayMs,
  upstreamLatencyMs: upstreamMs,
});

test("capability latency: gateway and upstream parts per listed tool; unlisted and late names are `other`", async () => {
  const registry = new Registry();
  const m = createMcpMetrics(registry);
  const names = Array.from({ length: MAX_TIMED_NAMES + 20 }, (_, i) => `tool${i}`);
  m.learn("r", "tool", names);
  m.observe(completed("tool1", 2, 300));
  m.observe(completed("tool1", 3, 700));
  m.observe(completed(`tool${MAX_TIMED_NAMES + 5}`, 1, 50));
  m.observe(completed("never-listed", 1, 10));
  m.observe(completed("tool2", 4, undefined)); // answered by the gateway: no upstream part

  const h = "tollgate_mcp_capability_duration_seconds";
  assert.equal(await sample(registry, `${h}_count`, { capability: "tool1", part: "upstream" }), 2);
  assert.equal(await sample(registry, `${h}_count`, { capability: "tool1", part: "gateway" }), 2);
  assert.ok(Math.abs((await sample(registry, `${h}_sum`, { capability: "tool1", part: "upstream" })) - 1) < 1e-9);
  assert.equal(await sample(registry, `${h}_bucket`, { capability: "tool1", part: "upstream", le: "0.5" }), 1, "0.3 s in, 0.7 s out");
  assert.equal(await sample(registry, `${h}_count`, { capability: "tool2", part: "gateway" }), 1);
  assert.equal(await sample(registry, `${h}_count`, { capability: "tool2", part: "upstream" }), 0);
  // Past the histogram's name budget the call still counts by name, but is timed as `other`.
  assert.equal(await sample(registry, `${h}_count`, { capability: `tool${MAX_TIMED_NAMES + 5}` }), 0);
  assert.equal(await sample(registry, "tollgate_mcp_capability_calls_total", { capability: `tool${MAX_TIMED_NAMES + 5}` }), 1);
  assert.equal(await sample(registry, `${h}_count`, { capability: "other", part: "upstream" }), 2);

  // Bounded: one histogram label value per timed name plus `other`, whatever callers send.
  for (let i = 0; i < 500; i++) m.observe(completed(`random-${i}`, 1, 1));
  const values = new Set<string>();
  for (const line of (await registry.metrics()).split("\n")) {
    const v = line.startsWith(`${h}_count{`) ? /capability="([^"]*)"/.exec(line)?.[1] : undefined;
    if (v !== undefined) values.add(v);
  }
  assert.deepEqual([...values].sort(), ["other", "tool1", "tool2"]);
});
