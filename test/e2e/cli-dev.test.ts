/**
 * `tollgate dev`: the gateway is rebuilt when project files change, on the same server; a broken
 * edit keeps the previous gateway serving and prints the problems.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { generateKey } from "../../src/store/crypto.js";
import { exitOf, outputOf, spawnCli, waitForLine } from "../helpers/cli.js";
import { writeProject } from "../helpers/harness.js";

const routes = (extraPaths: Record<string, unknown> = {}) =>
  JSON.stringify({
    openapi: "3.1.0",
    paths: {
      "/hello": {
        get: {
          operationId: "hello",
          "x-zuplo-route": { handler: { module: "$import(./modules/hello)", export: "hello", options: { word: "$env(WORD)" } } },
        },
      },
      ...extraPaths,
    },
  });
const helloModule = (version: string) =>
  `export function hello(_r: Request, ctx: { route: { handler: { options: { word: string } } } }) {\n` +
  `  return new Response("${version} " + ctx.route.handler.options.word);\n}\n`;

/** Polls `url` until its body equals `expected` (file watching is asynchronous). */
async function until(url: string, expected: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const res = await fetch(url);
    last = `${res.status} ${await res.text()}`;
    if (last === `200 ${expected}`) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${url} never answered "${expected}"; last answer: ${last}`);
}

test("dev reloads modules, config and .env; a broken edit keeps the old gateway", async () => {
  const dir = await writeProject({
    "config/routes.oas.json": routes(),
    "modules/hello.ts": helloModule("v1"),
    ".env": "WORD=one\n",
  });
  const child = spawnCli(["dev", "--project", dir, "--port", "0"], {
    TOLLGATE_STORE: "memory:",
    TOLLGATE_ENCRYPTION_KEY: generateKey(),
  });
  try {
    const [, url] = await waitForLine(child, /Tollgate dev serving 1 route\(s\) at (http:\/\/127\.0\.0\.1:\d+)/);
    await until(`${url}/hello`, "v1 one");

    await fs.writeFile(path.join(dir, "modules/hello.ts"), helloModule("v2"));
    await until(`${url}/hello`, "v2 one");

    await fs.writeFile(path.join(dir, ".env"), "WORD=two\n");
    await until(`${url}/hello`, "v2 two");

    const bye = {
      "/bye": { get: { operationId: "bye", "x-zuplo-route": { handler: { module: "$import(./modules/hello)", export: "hello" } } } },
    };
    await fs.writeFile(path.join(dir, "config/routes.oas.json"), routes(bye));
    await until(`${url}/bye`, "v2 undefined");

    // stdout (JSON log) and stderr (plain problem lines) are separate pipes: wait for both.
    const printed = waitForLine(child, /config\/policies\.json: line 1, column \d+: /);
    const logged = waitForLine(child, /configuration change rejected; still serving the previous version/);
    await fs.writeFile(path.join(dir, "config/policies.json"), "{ \"policies\": [ }");
    await Promise.all([printed, logged]);
    await until(`${url}/hello`, "v2 two");
    assert.equal((await fetch(`${url}/healthz`)).status, 200);

    child.kill("SIGTERM");
    assert.equal(await exitOf(child), 0, outputOf(child).stderr);
  } finally {
    child.kill("SIGKILL");
  }
});
