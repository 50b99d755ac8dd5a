/**
 * The quickstart, as its README walks through it: the real `examples/quickstart` project in a
 * real gateway, with the bundled demo upstreams, driven by the MCP SDK client and a headless
 * browser. And `npm start` itself: it starts, serves, and stops cleanly on SIGTERM.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { startHelloServer } from "./demo-upstream/hello-server.js";
import { MemoryOAuthClientProvider, startOAuthUpstream, TestBrowser } from "../test/fixtures/oauth-upstream.js";
import { startGateway } from "../test/helpers/harness.js";
import { completeSetup } from "../test/e2e/upstream-oauth-kit.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const projectDir = path.join(root, "examples", "quickstart");
const CALLBACK = "http://127.0.0.1:9/callback";

type ToolResult = { content: Array<{ type: string; text: string }> };

describe("quickstart project", () => {
  const closers: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  test("hello is anonymous; demo signs in, asks to connect, then runs as the connected account", async () => {
    const hello = await startHelloServer();
    closers.push(() => hello.close());
    const demo = await startOAuthUpstream();
    closers.push(() => demo.close());
    const gw = await startGateway({
      projectDir,
      env: { TOLLGATE_DEV_LOGIN: "1", HELLO_UPSTREAM_URL: hello.url, DEMO_UPSTREAM_URL: demo.mcpUrl },
    });
    closers.push(() => gw.close());

    const anon = new Client({ name: "quickstart-test", version: "1.0.0" });
    await anon.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp/hello`)));
    assert.deepEqual((await anon.listTools()).tools.map((t) => t.name).sort(), ["echo", "time"]);
    const echoed = (await anon.callTool({ name: "echo", arguments: { text: "hi" } })) as ToolResult;
    assert.equal(echoed.content[0]!.text, "hi");
    await anon.close();

    // 1. The MCP client meets the gateway's OAuth and signs in with dev login.
    const browser = new TestBrowser();
    const auth = new MemoryOAuthClientProvider(CALLBACK, "quickstart test");
    const demoUrl = new URL(`${gw.url}/mcp/demo`);
    await assert.rejects(
      new Client({ name: "quickstart-test", version: "1.0.0" }).connect(new StreamableHTTPClientTransport(demoUrl, { authProvider: auth })),
      UnauthorizedError,
    );
    assert.ok(auth.authorizationUrl?.href.startsWith(gw.url));
    // 2. The setup page: connect Demo Notes (signing in there as another account name), then approve.
    const back = await completeSetup(browser, auth.authorizationUrl!, (u) => u.href.startsWith(CALLBACK), { user: "alice", upstreamUser: "alice-notes" });
    assert.equal(back.status, 0, `the gateway sent the browser back to the client (at ${back.url.pathname})`);
    const code = back.url.searchParams.get("code");
    assert.ok(code);
    assert.equal(demo.tokenRequests.authorization_code, 1, "Demo Notes was connected on the setup page");
    const first = new StreamableHTTPClientTransport(demoUrl, { authProvider: auth });
    await first.finishAuth(code);

    // 3. whoami runs as the connected upstream account at once; the gateway's token never goes upstream.
    const connected = new Client({ name: "quickstart-test", version: "1.0.0" });
    await connected.connect(new StreamableHTTPClientTransport(demoUrl, { authProvider: auth }));
    const who = (await connected.callTool({ name: "whoami", arguments: {} })) as ToolResult;
    assert.equal(who.content[0]!.text, "alice-notes");
    await connected.close();
    const gatewayToken = `Bearer ${auth.saved!.access_token}`;
    assert.ok(demo.seenAuthorizations.length > 0);
    assert.ok(!demo.seenAuthorizations.includes(gatewayToken));
  });
});

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe("npm start", () => {
  test("starts the upstreams and the gateway, serves /mcp/hello, stops on SIGTERM", async () => {
    const [gwPort, helloPort, demoPort] = [await freePort(), await freePort(), await freePort()];
    const child = spawn(process.execPath, [path.join(root, "scripts", "start-quickstart.js")], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        PORT: String(gwPort),
        QUICKSTART_HELLO_PORT: String(helloPort),
        QUICKSTART_DEMO_PORT: String(demoPort),
        TOLLGATE_STORE: "memory:",
        TOLLGATE_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
        TOLLGATE_LOG_LEVEL: "warn",
      },
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    let output = "";
    child.stderr.on("data", (d: Buffer) => void (output += d.toString()));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          output += d.toString();
          if (output.includes("quickstart is running")) resolve();
        });
        void exited.then(() => reject(new Error(`npm start exited early:\n${output}`)));
      });
      assert.match(output, new RegExp(`http://127\\.0\\.0\\.1:${gwPort}/mcp/demo`));
      // The Inspector command that works on Node 20 too (2.x under the node@22 package).
      assert.match(output, /npx -y -p node@22 -p @modelcontextprotocol\/inspector@2 -- inspector/);
      assert.match(output, new RegExp(`Routes and your connections in a browser: http://127\\.0\\.0\\.1:${gwPort}/`));
      const home = await fetch(`http://127.0.0.1:${gwPort}/`);
      assert.match(await home.text(), /<strong>Demo Notes<\/strong><br><code>\/mcp\/demo<\/code>/);
      const client = new Client({ name: "npm-start-test", version: "1.0.0" });
      await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${gwPort}/mcp/hello`)));
      const r = (await client.callTool({ name: "echo", arguments: { text: "up" } })) as ToolResult;
      assert.equal(r.content[0]!.text, "up");
      await client.close();
    } finally {
      child.kill("SIGTERM");
    }
    assert.equal(await exited, 0, output);
    for (const port of [gwPort, helloPort, demoPort]) {
      await assert.rejects(fetch(`http://127.0.0.1:${port}/`), `port ${port} is closed`);
    }
  });
});
