/**
 * What writing one audit line costs: the CPU (user + system) of `writeFlat` through the
 * gateway's logger, per line, including the line's share of the writes and flushes.
 *
 *   node --import tsx bench/log-write.ts                        # /dev/null, a pipe, and no writing at all
 *   node --import tsx bench/log-write.ts --to pipe --lines 500000
 *
 * Targets: `devnull` (the logger's file is /dev/null), `pipe` (a child process logs to its stdout,
 * a pipe that `cat >/dev/null` drains; the child's CPU is counted, not cat's) and `none` (a
 * destination whose `write` does nothing: what building the line costs). Lines are written in
 * bursts of 1,000 with a `setImmediate` between them, so timers and write callbacks get their
 * turn as on a server; the run ends with `flushLog`. Not a test: it asserts nothing.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createLogger, flushLog, writeFlat, type Logger } from "../src/log.js";

type Target = "devnull" | "pipe" | "none" | "stdout";
const TARGETS: Target[] = ["devnull", "pipe", "none"];

function parseArgs(argv: string[]): { targets: Target[]; lines: number; rounds: number } {
  const out = { targets: TARGETS, lines: 200_000, rounds: 3 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[++i];
    if (flag === "--to" && ["devnull", "pipe", "none", "stdout"].includes(value!)) out.targets = [value as Target];
    else if (flag === "--lines" && Number(value) > 0) out.lines = Math.floor(Number(value));
    else if (flag === "--rounds" && Number(value) > 0) out.rounds = Math.floor(Number(value));
    else throw new Error(`unknown or invalid option ${flag} ${value ?? ""}`);
  }
  return out;
}

/** Writes `n` audit-sized lines (about 480 bytes each); returns CPU µs per line. */
async function run(log: Logger, n: number): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    writeFlat(
      log,
      "info",
      {
        event: "mcp_capability_completed",
        operationId: "notes",
        requestId: `req-${i}`,
        mcpSessionId: "c2Vzc2lvbi1pZA.AbCdEf0123",
        subjectId: "alice@example.com",
        clientId: "https://client.example.com/metadata.json",
        upstreamId: "notes",
        jsonRpcId: i,
        method: "tools/call",
        capabilityType: "tool",
        capabilityName: "search_notes",
        outcome: "success",
        errorCode: undefined,
        upstreamStatus: 200,
        latencyMs: 1.25,
        protocolVersion: "2025-06-18",
      },
      undefined,
    );
    if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
  }
  await flushLog(log, 30_000);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

function loggerFor(target: Target): Logger {
  if (target === "none") return createLogger({ destination: { write: () => true } as unknown as NodeJS.WritableStream });
  return createLogger({ file: target === "devnull" ? "/dev/null" : 1 });
}

/** The `pipe` target: this script as a child writing to stdout, a pipe (`|`) into `cat >/dev/null`. */
function viaPipe(lines: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const script = fileURLToPath(import.meta.url);
    const child = spawn("sh", ["-c", `"$0" --import tsx "$1" --to stdout --lines ${lines} --rounds 1 | cat >/dev/null`, process.execPath, script], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      const m = /^cpu-us-per-line (\S+)$/m.exec(err);
      if (code === 0 && m) resolve(Number(m[1]));
      else reject(new Error(`child exited ${code}: ${err}`));
    });
  });
}

const args = parseArgs(process.argv.slice(2));
if (args.targets[0] === "stdout") {
  const us = await run(loggerFor("stdout"), args.lines);
  process.stderr.write(`cpu-us-per-line ${us}\n`);
} else {
  for (const target of args.targets) {
    const results: number[] = [];
    for (let r = 0; r < args.rounds; r++) {
      results.push(target === "pipe" ? await viaPipe(args.lines) : await run(loggerFor(target), args.lines));
    }
    const sorted = [...results].sort((a, b) => a - b);
    console.log(`${target.padEnd(8)} ${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)} µs CPU per line (median of ${results.length}: ${results.map((x) => x.toFixed(2)).join(", ")})`);
  }
}
