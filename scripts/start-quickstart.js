#!/usr/bin/env node
// `npm start`: the quickstart in one command. Starts the two demo upstreams of
// examples/quickstart (an anonymous MCP server and an OAuth-protected one with its own
// authorization server), then the gateway in front of them, with the loopback-only dev login.
//
// Ports (all on 127.0.0.1): gateway PORT or 9000, QUICKSTART_HELLO_PORT or 9101,
// QUICKSTART_DEMO_PORT or 9102. Ctrl-C stops everything.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

register();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const host = "127.0.0.1";

function port(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    console.error(`${name} must be a port number, got "${raw}"`);
    process.exit(2);
  }
  return n;
}

const gatewayPort = port("PORT", 9000);
const helloPort = port("QUICKSTART_HELLO_PORT", 9101);
const demoPort = port("QUICKSTART_DEMO_PORT", 9102);

const { startHelloServer } = await import("../examples/demo-upstream/hello-server.ts");
const { startOAuthUpstream } = await import("../examples/demo-upstream/oauth-upstream.ts");

let hello;
let demo;
try {
  hello = await startHelloServer({ host, port: helloPort });
  demo = await startOAuthUpstream({
    host,
    port: demoPort,
    name: "Demo Notes",
    onEvent: (line) => console.log(`[demo-upstream] ${line}`),
  });
} catch (err) {
  console.error(`Could not start the demo upstreams: ${err.message}`);
  if (err.code === "EADDRINUSE") {
    console.error("Another process uses the port; set QUICKSTART_HELLO_PORT / QUICKSTART_DEMO_PORT to free ones.");
  }
  await hello?.close();
  process.exit(1);
}

console.log(`[quickstart] hello upstream:     ${hello.url} (anonymous)`);
console.log(`[quickstart] demo upstream:      ${demo.mcpUrl} (OAuth, authorization server ${demo.issuer})`);

const gatewayUrl = `http://${host}:${gatewayPort}`;
const basePath = (process.env.TOLLGATE_BASE_PATH || "/__tollgate").replace(/\/$/, "");
const child = spawn(
  process.execPath,
  [
    // As the container image runs it (docs/performance.md, "Node flags").
    "--max-semi-space-size=32",
    path.join(root, "bin", "tollgate.js"),
    "start",
    "--project",
    path.join(root, "examples", "quickstart"),
    "--port",
    String(gatewayPort),
    "--host",
    host,
    // A local demo: one process keeps the log readable (docs/cli.md, Workers).
    "--workers",
    "1",
  ],
  {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    // Its own process group: Ctrl-C reaches it once, through the forwarding below.
    detached: true,
    env: {
      ...process.env,
      TOLLGATE_DEV_LOGIN: "1",
      HELLO_UPSTREAM_URL: hello.url,
      DEMO_UPSTREAM_URL: demo.mcpUrl,
    },
  },
);

let stopping = false;
async function stopUpstreams() {
  await Promise.allSettled([hello.close(), demo.close()]);
}

const gatewayRunning = () => child.exitCode === null && child.signalCode === null;

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (stopping) {
      // A second Ctrl-C: the gateway stops at once instead of waiting for open streams.
      if (gatewayRunning()) child.kill("SIGINT");
      return;
    }
    stopping = true;
    console.log(`\n[quickstart] stopping (${signal})…`);
    if (gatewayRunning()) child.kill(signal);
    else void stopUpstreams().then(() => process.exit(0));
  });
}

process.on("exit", () => {
  if (gatewayRunning()) child.kill("SIGTERM");
});

child.on("exit", (code, signal) => {
  void stopUpstreams().then(() => {
    if (!stopping) console.error(`[quickstart] the gateway exited (${signal ?? `code ${code}`})`);
    process.exit(stopping ? (code ?? 0) : (code ?? 1));
  });
});

child.on("error", (err) => {
  console.error(`[quickstart] could not start the gateway: ${err.message}`);
  void stopUpstreams().then(() => process.exit(1));
});

// Tell the user what to do once the gateway answers.
async function waitForGateway() {
  for (let i = 0; i < 150 && child.exitCode === null; i++) {
    try {
      const res = await fetch(`${gatewayUrl}/healthz`);
      if (res.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

if (await waitForGateway()) {
  console.log(`
Tollgate quickstart is running at ${gatewayUrl}

  Routes and your connections in a browser: ${gatewayUrl}/

  Try it with MCP Inspector 2.x (in another terminal; it needs Node.js 22, fetched by npx):
    npx -y -p node@22 -p @modelcontextprotocol/inspector@2 -- inspector
  Transport: Streamable HTTP, then connect to one of:

    ${gatewayUrl}/mcp/hello   no sign-in; tools echo and time
    ${gatewayUrl}/mcp/demo    sign in (dev login: any username), connect your
                                       Demo Notes account once, then call whoami

  Your connections: ${gatewayUrl}${basePath}/connections
  Press Ctrl-C to stop.
`);
}
