import { test } from "node:test";
import assert from "node:assert/strict";
import { AggregatorRegistry, Histogram, Registry } from "prom-client";
import { BucketHistogram } from "./metric-buckets.js";

const BUCKETS = [0.001, 0.01, 0.1, 1];
const lines = (text: string) => text.split("\n").filter((l) => l.startsWith("h_"));

test("bucket histogram: the same exposition as prom-client's Histogram, bounds included", async () => {
  const mine = new Registry();
  const theirs = new Registry();
  const h = new BucketHistogram("h_seconds", "help", ["route", "part"], BUCKETS, mine);
  const ref = new Histogram({ name: "h_seconds", help: "help", labelNames: ["route", "part"], buckets: BUCKETS, registers: [theirs] });
  const values = [0, 0.001, 0.0010001, 0.01, 0.05, 0.1, 0.5, 1, 7, 1e9];
  for (const [i, v] of values.entries()) {
    const route = i % 2 ? "a" : "b";
    // The hot paths' ways: count into a series kept from before, or into a known series by key,
    // naming the labels only for a new one.
    if (i % 3 === 0) h.record(h.series(`${route}/up`, () => ({ route, part: "up" })), v);
    else if (!h.observeKnown(`${route}/up`, v)) h.observe(`${route}/up`, () => ({ route, part: "up" }), v);
    ref.observe({ route, part: "up" }, v);
  }
  assert.equal(h.observeKnown("c/up", 0.5), false, "an unseen series is not counted without its labels");
  assert.equal(h.observeKnown("a/up", Number.NaN), true, "not a number: ignored");
  h.observe("b/up", () => ({ route: "b", part: "up" }), Number.NaN); // ignored, never a broken sum
  h.record(h.series("a/up", () => assert.fail("labels are asked for a new series only")), Number.POSITIVE_INFINITY);
  assert.deepEqual(lines(await mine.metrics()), lines(await theirs.metrics()));
  h.reset();
  assert.deepEqual(lines(await mine.metrics()), []);
});

test("bucket histogram: workers' histograms add up bucket by bucket in the cluster aggregator", async () => {
  const regs = [new Registry(), new Registry()];
  const hs = regs.map((r) => new BucketHistogram("h_seconds", "help", ["route"], BUCKETS, r));
  hs[0]!.observe("x", () => ({ route: "x" }), 0.005);
  hs[1]!.observe("x", () => ({ route: "x" }), 0.005);
  hs[1]!.observe("x", () => ({ route: "x" }), 5);
  const merged = AggregatorRegistry.aggregate(await Promise.all(regs.map((r) => r.getMetricsAsJSON())));
  const text = await merged.metrics();
  assert.ok(text.includes('h_seconds_bucket{le="0.01",route="x"} 2'), text);
  assert.ok(text.includes('h_seconds_bucket{le="+Inf",route="x"} 3'), text);
  assert.ok(text.includes('h_seconds_count{route="x"} 3'), text);
  assert.ok(text.includes('h_seconds_sum{route="x"} 5.01'), text);
});
