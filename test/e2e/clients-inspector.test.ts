/**
 * MCP Inspector CLI 2.x (pinned 2.12.0) against the quickstart's `/mcp/demo`, in one run:
 * `--cli --server-url … --method tools/call --tool-name whoami` with `MCP_AUTO_OPEN_ENABLED=true`.
 * The Inspector prints "Please navigate to: <authorization URL>" and hands the URL to `$BROWSER`
 * (here `true`); the test opens it in chromium: dev login, the consent page's Connect for Demo
 * Notes, Approve. The CLI then prints the tool result.
 *
 * Inspector 2.x needs Node >= 22.19: it runs under the `node@22` npm package through npx (as the
 * conformance scripts do), with npx's cache in a temp directory so later runs reuse it. When the
 * packages cannot be fetched the test is skipped with the reason, unless CI=true (then it fails).
 * Chromium missing: skipped likewise.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Browser } from "playwright-core";
import { chromiumSkip, launchChromium } from "../helpers/chromium.js";
import { newPage, startCallbackServer, startQuickstart, waitForText, walk, type Quickstart } from "./clients-kit.js";

const INSPECTOR = "@modelcontextprotocol/inspector@2.12.0";
const cacheDir = path.join(os.tmpdir(), "tollgate-client-tests-npm-cache");

function npx(args: string[], env: Record<string, string>) {
  return spawn("npx", ["-y", "-p", "node@22", "-p", INSPECTOR, "--", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...(process.env as Record<string, string>), npm_config_cache: cacheDir, npm_config_update_notifier: "false", ...env },
  });
}

/** Fetches node@22 and the Inspector into npx's cache; the reason when that fails. */
async function prefetch(): Promise<string | undefined> {
  const child = npx(["node", "--version"], {});
  let out = "";
  child.stdout.on("data", (d: Buffer) => void (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => void (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  if (code === 0 && /^v22\./m.test(out)) return undefined;
  return `could not fetch node@22 and ${INSPECTOR} with npx (exit ${code}): ${out.slice(-300)}`;
}

let skip: string | false = chromiumSkip;
let qs: Quickstart;
let browser: Browser;
let home: string;

before(async () => {
  if (skip) return;
  const failed = await prefetch();
  if (failed) {
    if (process.env.CI === "true") throw new Error(failed);
    skip = failed;
    return;
  }
  qs = await startQuickstart();
  browser = await launchChromium();
  home = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-inspector-home-"));
});
after(async () => {
  await browser?.close();
  await qs?.close();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

test("MCP Inspector CLI 2.12: sign in and connect Demo Notes in the browser, tools/call whoami in the same run", { timeout: 120_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const probe = await startCallbackServer();
  const port = Number(new URL(probe.url).port);
  await probe.close();
  const child = npx(
    ["inspector", "--cli", "--server-url", qs.demoUrl, "--transport", "http", "--method", "tools/call", "--tool-name", "whoami", "--callback-url", `http://127.0.0.1:${port}/oauth/callback`],
    { HOME: home, MCP_AUTO_OPEN_ENABLED: "true", BROWSER: "true", MCP_INSPECTOR_SECRET_STORE: "memory", NO_COLOR: "1" },
  );
  let stdout = "";
  let stderr = "";
  const listeners: Array<(c: string) => void> = [];
  child.stdout.on("data", (d: Buffer) => void (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    for (const l of listeners) l(d.toString());
  });
  const exited = new Promise<number | null>((r) => child.on("exit", r));
  const { page, close } = await newPage(browser);
  try {
    const [, url] = await waitForText((f) => listeners.push(f), /Please navigate to: (\S+)/, "the Inspector's authorization URL", 60_000);
    assert.ok(url!.startsWith(`${qs.gw.url}/`), url);
    await walk(page, url!, {
      gatewayUser: "ivan",
      upstreamAccount: "ivan-notes",
      upstreamOrigin: qs.demo.origin,
      connectOnConsent: true,
      until: (u) => u.port === String(port),
    });
    assert.equal(await exited, 0, `inspector failed:\n${stderr}\n${stdout}`);
    assert.match(stdout, /ivan-notes/);
  } finally {
    child.kill();
    await close();
  }
});
