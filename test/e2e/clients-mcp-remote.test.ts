/**
 * mcp-remote (the stdio bridge desktop clients use for remote servers, pinned devDependency)
 * against the quickstart's `/mcp/demo`, driven over stdio by the SDK client as a desktop client
 * would. mcp-remote prints the gateway's authorization URL on stderr and hands it to `$BROWSER`
 * (here `true`, so no browser of its own starts); the test opens the URL in chromium.
 *
 * The user approves the gateway WITHOUT connecting Demo Notes (the case that used to end in
 * "mcp-remote exited 1"): `initialize` succeeds, `tools/list` asks to connect with the link in
 * the message, the user opens it, and the same mcp-remote process then lists and calls `whoami`.
 *
 * Skipped when chromium is missing, unless CI=true (then it fails).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Browser } from "playwright-core";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { chromiumSkip, launchChromium } from "../helpers/chromium.js";
import { newPage, startCallbackServer, startQuickstart, waitForText, walk, type Quickstart } from "./clients-kit.js";

const skip = chromiumSkip;
const proxyJs = createRequire(import.meta.url).resolve("mcp-remote/dist/proxy.js");

let qs: Quickstart;
let browser: Browser;
let configDir: string;

before(async () => {
  if (skip) return;
  qs = await startQuickstart();
  browser = await launchChromium();
  configDir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-mcp-remote-"));
});
after(async () => {
  await browser?.close();
  await qs?.close();
  if (configDir) fs.rmSync(configDir, { recursive: true, force: true });
});

/** A free loopback port for mcp-remote's OAuth callback listener. */
async function freePort(): Promise<number> {
  const probe = await startCallbackServer();
  const port = Number(new URL(probe.url).port);
  await probe.close();
  return port;
}

test("mcp-remote 0.15.1: sign in and connect on the setup page, initialize, tools/list, whoami — one process, no restart", { skip, timeout: 90_000 }, async () => {
  const port = await freePort();
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [proxyJs, qs.demoUrl, String(port), "--host", "127.0.0.1"],
    env: { ...(process.env as Record<string, string>), MCP_REMOTE_CONFIG_DIR: configDir, BROWSER: "true" },
    stderr: "pipe",
  });
  let stderr = "";
  const listeners: Array<(c: string) => void> = [];
  transport.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
    for (const l of listeners) l(d.toString());
  });
  const authUrl = waitForText((f) => listeners.push(f), /authorize this client by visiting:\s+(\S+)/, "mcp-remote's authorization URL");
  const client = new Client({ name: "desktop-client", version: "1" });
  const connected = client.connect(transport);
  const { page, close } = await newPage(browser);
  try {
    const [, url] = await authUrl;
    assert.ok(url!.startsWith(`${qs.gw.url}/`), `mcp-remote opens the gateway's authorization endpoint: ${url}`);
    // Sign in: the setup page connects Demo Notes first (Approve waits for it), then approves.
    await walk(page, url!, {
      gatewayUser: "dana",
      upstreamAccount: "dana-notes",
      upstreamOrigin: qs.demo.origin,
      connectOnConsent: true,
      until: (u) => u.port === String(port),
    });
    await connected;
    assert.ok((await client.listTools()).tools.some((t) => t.name === "whoami"));
    const who = (await client.callTool({ name: "whoami", arguments: {} })) as { content: Array<{ text?: string }> };
    assert.equal(who.content[0]?.text, "dana-notes");
    assert.doesNotMatch(stderr, /Fatal error|exited 1/);
  } finally {
    await close();
    await client.close().catch(() => {});
  }
});
