/**
 * Two gateways in one process, on one project: the default configuration and the same with
 * `TOLLGATE_AUDIT=off`, each with its own listener (`runServer`, as `tollgate start` runs it).
 * The benchmark loads one and then the other, in alternation, and charges each the process's CPU
 * time while it was loaded: what the audit trail costs, without the differences between two
 * processes (how far V8 has optimised each, heap layout, which core's neighbour is busy), which
 * on a shared 2-core machine spread by more than the cost itself. Both gateways run the same
 * functions, so V8 optimises them for both at once; see docs/performance.md.
 *
 * Usage: audit-pair.ts <project dir>. Environment as for `tollgate start` (TOLLGATE_STORE,
 * TOLLGATE_ENCRYPTION_KEY, …). Prints `{"on": port, "off": port}` on stderr once both listen;
 * the gateways' log lines go to stdout. Exits on SIGTERM.
 */
import { runServer, type RunningServer } from "../src/cli/run.js";

const projectDir = process.argv[2];
if (!projectDir) throw new Error("usage: audit-pair.ts <project dir>");

async function start(env: NodeJS.ProcessEnv): Promise<{ server: RunningServer; port: number }> {
  const r = await runServer({ projectDir: projectDir!, host: "127.0.0.1", port: 0, env, watch: false, stdout: () => {}, stderr: (l) => process.stderr.write(`${l}\n`), startWarnings: false });
  if (typeof r === "number") throw new Error(`gateway did not start (exit code ${r})`);
  const addr = r.server.address();
  return { server: r, port: typeof addr === "object" && addr ? addr.port : 0 };
}

const on = await start(process.env);
const off = await start({ ...process.env, TOLLGATE_AUDIT: "off" });
process.stderr.write(`${JSON.stringify({ on: on.port, off: off.port })}\n`);
process.once("SIGTERM", () => {
  void Promise.all([on.server.shutdown("SIGTERM"), off.server.shutdown("SIGTERM")]).then(() => process.exit(0));
});
