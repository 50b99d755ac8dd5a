import { test } from "node:test";
import assert from "node:assert/strict";
import { Histogram, Registry } from "prom-client";
import { createMetrics } from "./metrics.js";

/** The exposition lines of one metric family. */
const linesOf = (text: string, name: string) => text.split("\n").filter((l) => l.startsWith(name));

test("recorded requests appear at scrape time exactly as direct prom-client calls would show them", async () => {
  const m = createMetrics();
  const reference = new Registry();
  const direct = new Histogram({
    name: "tollgate_request_duration_seconds",
    help: "reference",
    labelNames: ["route"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [reference],
  });
  const samples: Array<[string, string, number, number]> = [
    ["mcp", "POST", 200, 0.0004],
    ["mcp", "POST", 200, 0.003],
    ["mcp", "GET", 200, 0.2],
    ["mcp", "POST", 401, 0.0001],
    ["other", "DELETE", 404, 12],
  ];
  for (const [route, method, status, seconds] of samples) {
    m.record(route, method, status, seconds);
    direct.observe({ route }, seconds);
  }
  const text = await m.registry.metrics();
  assert.deepEqual(linesOf(text, "tollgate_requests_total{").sort(), [
    'tollgate_requests_total{route="mcp",method="GET",status="200"} 1',
    'tollgate_requests_total{route="mcp",method="POST",status="200"} 2',
    'tollgate_requests_total{route="mcp",method="POST",status="401"} 1',
    'tollgate_requests_total{route="other",method="DELETE",status="404"} 1',
  ]);
  const expected = linesOf(await reference.metrics(), "tollgate_request_duration_seconds_");
  assert.deepEqual(linesOf(text, "tollgate_request_duration_seconds_"), expected);

  // A second scrape adds only what happened since the first.
  m.record("mcp", "POST", 200, 0.0004);
  direct.observe({ route: "mcp" }, 0.0004);
  const again = await m.registry.metrics();
  assert.ok(again.includes('tollgate_requests_total{route="mcp",method="POST",status="200"} 3'));
  assert.deepEqual(linesOf(again, "tollgate_request_duration_seconds_"), linesOf(await reference.metrics(), "tollgate_request_duration_seconds_"));
});

test("many durations of one route before a scrape are all counted", async () => {
  const m = createMetrics();
  const n = 10_000; // more than one buffer's worth before any scrape
  for (let i = 0; i < n; i++) m.record("busy", "POST", 200, 0.002);
  const text = await m.registry.metrics();
  assert.ok(text.includes(`tollgate_request_duration_seconds_count{route="busy"} ${n}`), text);
  assert.ok(text.includes(`tollgate_requests_total{route="busy",method="POST",status="200"} ${n}`));
});
