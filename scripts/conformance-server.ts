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
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startConformanceServer } from "../test/fixtures/conformance-server.js";
import { startGateway, writeProject } from "../test/helpers/harness.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const cli = path.join(root, "node_modules/@modelcontextprotocol/conformance/dist/index.js");

interface Totals {
  passed: number;
  failed: number;
  failures: string[];
}

/** Runs `conformance server --url <url> --suite all` under Node 22 and parses its summary. */
function runSuite(label: string, url: string): Promise<Totals> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `tollgate-conformance-${label}-`));
  const args = ["-y", "-p", "node@22", "--", "node", cli, "server", "--url", url, "--suite", "all", "-o", out];
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
      resolve({ passed: Number(total[1]), failed: Number(total[2]), failures });
    });
  });
}

const upstream = await startConformanceServer();
const projectDir = await writeProject({
  "config/policies.json": `{ "policies": [] }`,
  "config/routes.oas.json": JSON.stringify({
    openapi: "3.1.0",
    info: { title: "conformance", version: "1" },
    paths: {
      "/mcp": {
        "get,post,delete": {
          operationId: "conformance-upstream",
          "x-zuplo-route": {
            corsPolicy: "none",
            handler: {
              module: "$import(@zuplo/runtime/mcp-gateway)",
              export: "McpProxyHandler",
              options: { rewritePattern: upstream.url },
            },
            policies: { inbound: [] },
          },
        },
      },
    },
  }),
});
const gateway = await startGateway({ projectDir, env: { TOLLGATE_LOG_LEVEL: "warn" } });
let code = 0;
try {
  const direct = await runSuite("direct", upstream.url);
  const proxied = await runSuite("gateway", `${gateway.url}/mcp`);
  console.log(`conformance (server, all scenarios) direct:  ${direct.passed} passed, ${direct.failed} failed`);
  for (const f of direct.failures) console.log(`  direct  ${f}`);
  console.log(`conformance (server, all scenarios) gateway: ${proxied.passed} passed, ${proxied.failed} failed`);
  for (const f of proxied.failures) console.log(`  gateway ${f}`);
  if (proxied.failed > direct.failed || proxied.passed < direct.passed) code = 1;
} catch (err) {
  console.error((err as Error).message);
  code = 1;
} finally {
  await gateway.close();
  await upstream.close();
}
process.exit(code);
