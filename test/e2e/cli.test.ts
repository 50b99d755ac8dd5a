/**
 * The `tollgate` command as a user runs it: `node bin/tollgate.js …` in a child process.
 * validate on good and broken fixture projects, start + /healthz + graceful SIGTERM, keys.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import path from "node:path";
import fs from "node:fs/promises";
import { generateKey } from "../../src/store/crypto.js";
import { exitOf, outputOf, ROOT, runCli, spawnCli, waitForLine } from "../helpers/cli.js";
import { writeProject } from "../helpers/harness.js";

const fixture = (name: string) => path.join(ROOT, "test/fixtures/projects", name);
const STACK = /^\s+at .+:\d+:\d+\)?$/m;

test("validate: a good project exits 0 and prints OK", async () => {
  const r = await runCli(["validate", "--project", fixture("good")]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^OK: 2 route\(s\), 3 policy\(ies\)/m);
  assert.equal(r.stderr, "");
});

const BROKEN: Record<string, string[]> = {
  "broken-jsonc": [
    "config/routes.oas.json: line 9, column 11: ',' expected",
    "config/policies.json: line 3, column 5: unterminated comment",
  ],
  "broken-compat": [
    'config/routes.oas.json: paths["/mcp"]["get,post"]["x-zuplo-route"].handler.export: McpProxyHandler is an MCP gateway feature and needs compatibilityDate >= 2026-03-01 in zuplo.jsonc (found 2025-06-01)',
  ],
  "broken-rules": [
    // unknown policy name on a route
    'config/routes.oas.json: paths["/mcp/linear"]["get,post"]["x-zuplo-route"].policies.inbound[3]: unknown policy "no-such-policy"',
    // two token-exchange policies on one route
    'config/routes.oas.json: paths["/mcp/linear"]["get,post"]["x-zuplo-route"].policies.inbound[2]: only one mcp-token-exchange-inbound policy is allowed per route',
    // unknown $import export
    'config/routes.oas.json: paths["/other"].get["x-zuplo-route"].handler.export: "NoSuchHandler" is not an export of @zuplo/runtime; available: ',
    // $env outside options
    "config/policies.json: policies[3].handler.module: $env(...) is only allowed inside handler and policy options",
    // zod option error
    'config/policies.json: policies[2].handler.options.authMode: expected "user-oauth" | "shared-oauth" | "id-jag", got "user"',
  ],
};

for (const [name, expected] of Object.entries(BROKEN)) {
  test(`validate: ${name} exits 1 listing every problem without a stack trace`, async () => {
    const r = await runCli(["validate", "--project", fixture(name)]);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    const lines = r.stderr.split("\n").filter(Boolean);
    for (const e of expected) {
      assert.ok(lines.some((l) => l.startsWith(e)), `missing:\n${e}\nin:\n${r.stderr}`);
    }
    assert.match(lines.at(-1)!, /^\d+ configuration problems? found$/);
    assert.doesNotMatch(r.stderr, STACK);
    assert.doesNotMatch(r.stdout, /OK/);
  });
}

test("validate: a missing project folder is reported plainly", async () => {
  const r = await runCli(["validate", "--project", path.join(ROOT, "test/fixtures/projects/does-not-exist")]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^zuplo\.jsonc: file not found$/m);
  assert.doesNotMatch(r.stderr, STACK);
});

test("start: a config error exits 1 with the same output as validate", async () => {
  const r = await runCli(["start", "--project", fixture("broken-compat"), "--port", "0"], { TOLLGATE_STORE: "memory:" });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^config\/routes\.oas\.json: paths\["\/mcp"\]\["get,post"\]\["x-zuplo-route"\]\.handler\.export: /m);
  assert.doesNotMatch(r.stderr, STACK);
});

test("start: production without an encryption key refuses to start", async () => {
  const r = await runCli(["start", "--project", fixture("good"), "--port", "0"], {
    TOLLGATE_STORE: "memory:",
    NODE_ENV: "production",
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /TOLLGATE_ENCRYPTION_KEY is required in production/);
  assert.doesNotMatch(r.stderr, STACK);
});

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      })
      .on("error", reject);
  });
}

test("start: serves /healthz, /readyz and routes; SIGTERM exits 0", async () => {
  const child = spawnCli(["start", "--project", fixture("good"), "--port", "0"], {
    TOLLGATE_STORE: "memory:",
    TOLLGATE_ENCRYPTION_KEY: generateKey(),
    GREETING: "hey",
  });
  try {
    const [, url] = await waitForLine(child, /serving 2 route\(s\) at (http:\/\/127\.0\.0\.1:\d+)/);
    const health = await get(`${url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), { status: "ok" });
    assert.equal((await get(`${url}/readyz`)).status, 200);
    // The front page names the routes and links the connections page.
    const home = await get(`${url}/`);
    assert.equal(home.status, 200);
    assert.match(home.body, /<strong>Linear<\/strong><br><code>\/mcp\/linear-v1<\/code>/);
    assert.match(home.body, new RegExp(`MCP server URL: <code>${url}/mcp/linear-v1</code>`));
    assert.match(home.body, /<strong>hello<\/strong><br><code>\/hello\/\{name\}<\/code>/);
    assert.ok(home.body.includes(`href="${url}/__tollgate/connections"`), home.body);
    const hello = await get(`${url}/hello/ada`);
    assert.equal(hello.status, 200);
    assert.equal(hello.body, "hey ada", "process env wins over .env");
    child.kill("SIGTERM");
    assert.equal(await exitOf(child), 0, outputOf(child).stderr);
    assert.match(outputOf(child).stdout, /"msg":"stopped"/);
  } finally {
    child.kill("SIGKILL");
  }
});

test("start: SIGTERM lets an in-flight request finish, then exits 0", async () => {
  const dir = await writeProject({
    "config/routes.oas.json": JSON.stringify({
      openapi: "3.1.0",
      paths: {
        "/slow": {
          get: {
            operationId: "slow",
            "x-zuplo-route": { handler: { module: "$import(./modules/slow)", export: "slow", options: { release: "$env(RELEASE_FILE)" } } },
          },
        },
      },
    }),
    // Streams "start", then waits until the test creates the release file, then "done".
    "modules/slow.ts": `
      import fs from "node:fs";
      export function slow(_req: Request, ctx: { route: { handler: { options: { release: string } } } }) {
        const file = ctx.route.handler.options.release;
        const body = new ReadableStream({
          async start(c) {
            c.enqueue(new TextEncoder().encode("start\\n"));
            while (!fs.existsSync(file)) await new Promise((r) => setTimeout(r, 20));
            c.enqueue(new TextEncoder().encode("done\\n"));
            c.close();
          },
        });
        return new Response(body);
      }
    `,
  });
  const release = path.join(dir, "release");
  const child = spawnCli(["start", "--project", dir, "--port", "0"], {
    TOLLGATE_STORE: "memory:",
    TOLLGATE_ENCRYPTION_KEY: generateKey(),
    RELEASE_FILE: release,
  });
  try {
    const [, url] = await waitForLine(child, /at (http:\/\/127\.0\.0\.1:\d+)/);
    let body = "";
    const finished = new Promise<string>((resolve, reject) => {
      http
        .get(`${url}/slow`, { agent: false }, (res) => {
          res.on("data", (c: Buffer) => {
            body += c.toString();
            if (body === "start\n") {
              // The request is in flight: ask for shutdown, wait until it is under way, release.
              child.kill("SIGTERM");
              void waitForLine(child, /"msg":"shutting down"/).then(() => fs.writeFile(release, ""), reject);
            }
          });
          res.on("end", () => resolve(body));
          res.on("error", reject);
        })
        .on("error", reject);
    });
    assert.equal(await finished, "start\ndone\n");
    assert.equal(await exitOf(child), 0, outputOf(child).stderr);
  } finally {
    child.kill("SIGKILL");
  }
});

test("keys generate prints a fresh 32-byte base64 key", async () => {
  const [a, b] = await Promise.all([runCli(["keys", "generate"]), runCli(["keys", "generate"])]);
  assert.equal(a.code, 0);
  const key = a.stdout.trim();
  assert.equal(Buffer.from(key, "base64").length, 32);
  assert.notEqual(key, b.stdout.trim());
});

test("unknown commands exit 2 with usage", async () => {
  const r = await runCli(["frobnicate"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
  assert.match(r.stderr, /Usage: tollgate/);
});
