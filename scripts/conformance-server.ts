/**
 * Runs the official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode,
 * every scenario) twice: (a) against the conformance test server directly, (b) against the same
 * server behind a Tollgate gateway whose one route proxies to it with McpProxyHandler.
 * Prints both totals; exits 1 when the gateway run fails a check the direct run passes.
 *
 * The suite needs Node 22; it runs under the `node@22` npm package through npx (installed into
 * npx's cache on first use), while the servers run on the current Node.
 *
 * Usage: node --import tsx scripts/conformance-server.ts   (or scripts/conformance-server.sh)
 *
 * To measure another MCP server instead of the test server (for example the conformance
 * project's own reference server), set `CONFORMANCE_UPSTREAM_URL` to its MCP endpoint, and
 * optionally `CONFORMANCE_UPSTREAM_CMD` to a shell command that starts it: the script then starts
 * it, waits until the URL's port accepts connections and stops it at the end.
 * `CONFORMANCE_PACKAGE` picks a published suite version instead of the devDependency.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startConformanceServer } from "../test/fixtures/conformance-server.js";
import { proxyProject } from "../test/e2e/mcp-proxy-helpers.js";
import { startGateway } from "../test/helpers/harness.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const cli = path.join(root, "node_modules/@modelcontextprotocol/conformance/dist/index.js");

interface Totals {
  passed: number;
  failed: number;
  failures: string[];
  /** Summary line per scenario, e.g. "server-initialize: 1 passed, 0 failed". */
  scenarios: Map<string, string>;
}

/** Runs `conformance server --url <url> --suite all` under Node 22 and parses its summary. */
function runSuite(label: string, url: string): Promise<Totals> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `tollgate-conformance-${label}-`));
  // CONFORMANCE_PACKAGE (e.g. "@modelcontextprotocol/conformance@0.2.0-alpha.11") runs that
  // published version of the suite instead of the installed devDependency.
  const pkg = process.env.CONFORMANCE_PACKAGE;
  const suite = pkg ? ["-p", pkg, "--", "conformance"] : ["--", "node", cli];
  const args = ["-y", "-p", "node@22", ...suite, "server", "--url", url, "--suite", "all", "-o", out];
  return new Promise((resolve, reject) => {
    const child = spawn("npx", args, { cwd: out, stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (c: Buffer) => (text += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (text += c.toString("utf8")));
    child.on("error", reject);
    child.on("close", () => {
      fs.writeFileSync(path.join(out, "output.txt"), text);
      const total = /Total: (\d+) passed, (\d+) failed/.exec(text);
      if (!total) {
        reject(new Error(`${label}: no summary in the conformance output (see ${out}/output.txt)`));
        return;
      }
      const failures = text
        .split("\n")
        .filter((l) => /^✗/.test(l.trim()) || / [1-9]\d* failed/.test(l))
        .filter((l) => !l.startsWith("Total"))
        .map((l) => l.trim());
      const scenarios = new Map<string, string>();
      for (const m of text.matchAll(/^[✓✗] ([\w-]+): (\d+ passed, \d+ failed)/gm)) scenarios.set(m[1]!, m[2]!);
      resolve({ passed: Number(total[1]), failed: Number(total[2]), failures, scenarios });
    });
  });
}

/** Starts `CONFORMANCE_UPSTREAM_CMD` (if set) and resolves once the URL's port accepts connections. */
async function startExternalUpstream(url: string): Promise<{ url: string; close(): Promise<void> }> {
  const cmd = process.env.CONFORMANCE_UPSTREAM_CMD;
  const child = cmd ? spawn(cmd, { shell: true, detached: true, stdio: ["ignore", "inherit", "inherit"] }) : undefined;
  const { hostname, port } = new URL(url);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await new Promise<boolean>((done) => {
      const s = net.connect(Number(port || 80), hostname.replace(/^\[|\]$/g, ""));
      s.once("connect", () => (s.destroy(), done(true)));
      s.once("error", () => done(false));
    });
    if (ok) break;
    if (Date.now() > deadline || child?.exitCode != null) {
      if (child?.pid && child.exitCode == null) process.kill(-child.pid, "SIGTERM");
      throw new Error(`upstream ${url} is not accepting connections`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    async close() {
      if (child?.pid && child.exitCode == null) process.kill(-child.pid, "SIGTERM");
    },
  };
}

const external = process.env.CONFORMANCE_UPSTREAM_URL;
const upstream = external ? await startExternalUpstream(external) : await startConformanceServer();
const projectDir = await proxyProject([{ path: "/mcp", options: { rewritePattern: upstream.url } }]);
const gateway = await startGateway({ projectDir, env: { TOLLGATE_LOG_LEVEL: "warn" } });
let code = 0;
try {
  const direct = await runSuite("direct", upstream.url);
  const proxied = await runSuite("gateway", `${gateway.url}/mcp`);
  console.log(`conformance (server, all scenarios) direct:  ${direct.passed} passed, ${direct.failed} failed`);
  for (const f of direct.failures) console.log(`  direct  ${f}`);
  console.log(`conformance (server, all scenarios) gateway: ${proxied.passed} passed, ${proxied.failed} failed`);
  for (const f of proxied.failures) console.log(`  gateway ${f}`);
  for (const [name, result] of direct.scenarios) {
    const via = proxied.scenarios.get(name) ?? "missing";
    if (via !== result) console.log(`  differs: ${name}: direct ${result}, gateway ${via}`);
  }
  if (proxied.failed > direct.failed || proxied.passed < direct.passed) code = 1;
} catch (err) {
  console.error((err as Error).message);
  code = 1;
} finally {
  await gateway.close();
  await upstream.close();
}
process.exit(code);
