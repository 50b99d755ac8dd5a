/**
 * The CPU breakdown of `npm run bench:perf` rests on three pure steps: the JIT symbol map is
 * made non-overlapping (newest entry wins), `perf report` rows are parsed, and each sample is
 * charged to an area. A wrong step would silently move µs between areas.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { areaOf, latestOnly, parseReport } from "../../bench/perf-areas.js";

test("bench:perf: an address listed twice in the JIT map belongs to the newest code there", () => {
  const map = ["1000 100 JS:~startup file:///x/node_modules/tsx/dist/a.mjs:1:1", "2000 10 JS:*other node:events:1:1", "1080 40 JS:*serve file:///x/src/gateway.ts:1:5", ""].join("\n");
  const out = latestOnly(map).trim().split("\n");
  assert.deepEqual(out, ["1080 40 JS:*serve file:///x/src/gateway.ts:1:5", "2000 10 JS:*other node:events:1:1"]);
  // Entries that only touch (end == next start) both stay.
  assert.equal(latestOnly("10 10 a\n20 10 b\n").trim().split("\n").length, 2);
  // Many entries: the result never overlaps and always keeps the newest entry.
  const lines: string[] = [];
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 500; i++) lines.push(`${Math.floor(rnd() * 0x10000).toString(16)} ${Math.floor(1 + rnd() * 0x100).toString(16)} f${i}`);
  const kept = latestOnly(lines.join("\n")).trim().split("\n").map((l) => l.split(" "));
  assert.equal(kept.some((k) => k[2] === "f499"), true);
  for (let i = 1; i < kept.length; i++) {
    const prev = kept[i - 1]!;
    assert.ok(parseInt(prev[0]!, 16) + parseInt(prev[1]!, 16) <= parseInt(kept[i]![0]!, 16), `${prev.join(" ")} overlaps ${kept[i]!.join(" ")}`);
  }
});

test("bench:perf: perf report rows are parsed and charged to their area", () => {
  const report = [
    "# Samples: 3K of event 'cpu-clock'",
    "      1200  node                 [.] Builtins_LoadIC_Megamorphic",
    "       300  [kernel.kallsyms]    [k] tcp_sendmsg_locked",
    "        40  [JIT] tid 8189       [.] JS:*'serve file:///x/src/gateway.ts:1:7296",
    "        12  [JIT] tid 8189       [.] JS:+writeH1 file:///x/node_modules/undici/lib/dispatcher/client-h1.js:1144:18",
    "         9  [JIT] tid 8189       [.] JS:*end node:_http_outgoing:1143:45",
    "         5  node                 [.] v8::internal::Scavenger::ScavengePage",
    "         4  node                 [.] v8::internal::StringTable::LookupKey",
    "         3  node                 [.] llhttp__internal_execute",
    "         2  libc.so.6            [.] __memmove_avx_unaligned_erms",
  ].join("\n");
  const rows = parseReport(report);
  assert.equal(rows.length, 9);
  assert.deepEqual(rows[2], { samples: 40, dso: "[JIT] tid 8189", sym: "JS:*'serve file:///x/src/gateway.ts:1:7296" });
  assert.deepEqual(
    rows.map((r) => areaOf(r.dso, r.sym, "node")),
    [
      "V8 builtins",
      "kernel",
      "JavaScript: gateway (src/)",
      "JavaScript: undici",
      "JavaScript: Node core",
      "V8 garbage collection",
      "V8 runtime",
      "Node native (llhttp, libuv, streams)",
      "libc",
    ],
  );
});
