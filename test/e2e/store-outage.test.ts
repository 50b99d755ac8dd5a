/**
 * The store failing under a running gateway: PostgreSQL blackholed (connections open but
 * nothing answers) and unreachable (its port closed), SQLite write-locked by another connection.
 * Every request that needs the store gets a prompt 503 `store_unavailable` with `Retry-After` —
 * problem+json on pages, a JSON-RPC error carrying the request's id on MCP routes — `/readyz`
 * answers 503 within the store timeouts instead of hanging, and the gateway recovers by itself
 * when the store comes back.
 *
 * PostgreSQL sits behind a loopback TCP proxy this test controls: it forwards bytes until told
 * to blackhole (hold every connection, forward nothing) or to close its port.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { createStore } from "../../src/store/index.js";
import type { Store } from "../../src/store/types.js";
import { dropSchema, findTestPostgres, uniqueSchema } from "./store-postgres-env.js";
import { startIdentity, startScenario, type Identity, type Scenario } from "./upstream-oauth-kit.js";

const TIMEOUTS = { connectTimeoutMs: 400, queryTimeoutMs: 400 };

let identity: Identity;
before(async () => {
  identity = await startIdentity();
});
after(async () => {
  await identity.close();
});

/** A TCP proxy to `target` that can stop forwarding (blackhole) or close its port. */
class ControlledProxy {
  private server = net.createServer((s) => this.accept(s));
  private readonly sockets = new Set<net.Socket>();
  private mode: "forward" | "blackhole" = "forward";
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  private accept(client: net.Socket): void {
    this.sockets.add(client);
    client.on("close", () => this.sockets.delete(client));
    client.on("error", () => client.destroy());
    if (this.mode === "blackhole") return; // accepted, never answered
    const upstream = net.connect(this.target);
    this.sockets.add(upstream);
    upstream.on("close", () => {
      this.sockets.delete(upstream);
      client.destroy();
    });
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    client.on("data", (d) => this.mode === "forward" && upstream.write(d));
    upstream.on("data", (d) => this.mode === "forward" && client.write(d));
  }

  /** Existing connections go silent (bytes dropped both ways); new ones are accepted and ignored. */
  blackhole(): void {
    this.mode = "blackhole";
  }

  /** The port closes and every connection is cut: the database is unreachable. */
  async closePort(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Back to normal: the silent connections are lost (as after a network outage), new ones forward. */
  async restore(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.mode = "forward";
    if (!this.server.listening) {
      this.server = net.createServer((s) => this.accept(s));
      await this.listen(this.port);
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A tools/call on the MCP route for a user without a cached grant: it needs the store. */
async function mcpCall(s: Scenario, user: string, id: number): Promise<Response> {
  return fetch(`${s.gw.url}/mcp/notes`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${await identity.token(user)}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "whoami", arguments: {} } }),
  });
}

async function expectRpcUnavailable(res: Response, id: number): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 503, text);
  assert.equal(res.headers.get("retry-after"), "5");
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  const body = JSON.parse(text) as { id: unknown; error: { code: number; data: { code: string } } };
  assert.equal(body.id, id, "the JSON-RPC error carries the request's id");
  assert.equal(body.error.code, -32000);
  assert.equal(body.error.data.code, "store_unavailable");
  assert.ok(!/postgres|sqlite|ECONN|timeout/i.test(text), `nothing about the cause reaches the client: ${text}`);
}

async function expectProblemUnavailable(res: Response): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 503, text);
  assert.equal(res.headers.get("retry-after"), "5");
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  assert.equal((JSON.parse(text) as { code: string }).code, "store_unavailable");
}

/** The connections page with a (well-formed, unknown) session cookie: it reads the session store. */
const page = (s: Scenario) =>
  fetch(`${s.gw.url}/__tollgate/connections`, { headers: { cookie: `tollgate_session=${"a".repeat(43)}`, accept: "text/html" }, redirect: "manual" });

/** The store answers again: ready, and the MCP route asks this new user to connect (not 503). */
async function expectRecovered(s: Scenario, user: string): Promise<void> {
  assert.equal((await fetch(`${s.gw.url}/readyz`)).status, 200);
  const res = await mcpCall(s, user, 99);
  const text = await res.text();
  assert.notEqual(res.status, 503, text);
  assert.match(text, /-32042/, "connect-required: the store was read and written");
  assert.notEqual((await page(s)).status, 503);
}

describe("PostgreSQL outage", async () => {
  const pgEnv = await findTestPostgres();
  if (!pgEnv.url) {
    if (pgEnv.required) test("PostgreSQL is required when CI=true", () => assert.fail(pgEnv.reason));
    else test("PostgreSQL outage", { skip: pgEnv.reason }, () => undefined);
    return;
  }
  const url = new URL(pgEnv.url);

  async function withProxiedGateway(fn: (s: Scenario, proxy: ControlledProxy) => Promise<void>): Promise<void> {
    const proxy = new ControlledProxy({ host: url.hostname, port: Number(url.port || 5432) });
    await proxy.listen();
    const schema = uniqueSchema("outage");
    const proxied = new URL(url);
    proxied.port = String(proxy.port);
    proxied.searchParams.set("schema", schema);
    let store: Store | undefined;
    let s: Scenario | undefined;
    try {
      store = await createStore(proxied.toString(), TIMEOUTS);
      s = await startScenario(identity, {}, {}, { store });
      assert.equal((await fetch(`${s.gw.url}/readyz`)).status, 200);
      await fn(s, proxy);
    } finally {
      await s?.close();
      await store?.close();
      await proxy.close();
      await dropSchema(url.toString(), schema);
    }
  }

  test("blackholed: 503 store_unavailable promptly everywhere, then recovery without a restart", async () => {
    await withProxiedGateway(async (s, proxy) => {
      proxy.blackhole();
      const ready = await fetch(`${s.gw.url}/readyz`);
      assert.equal(ready.status, 503, "readyz answers (bounded by the store timeouts) instead of hanging");
      await expectRpcUnavailable(await mcpCall(s, "carol", 7), 7);
      await expectProblemUnavailable(await page(s));
      await proxy.restore();
      await expectRecovered(s, "dan");
    });
  });

  test("unreachable (port closed): 503 store_unavailable, then recovery without a restart", async () => {
    await withProxiedGateway(async (s, proxy) => {
      await proxy.closePort();
      assert.equal((await fetch(`${s.gw.url}/readyz`)).status, 503);
      await expectRpcUnavailable(await mcpCall(s, "erin", 8), 8);
      await expectProblemUnavailable(await page(s));
      await proxy.restore();
      await expectRecovered(s, "fay");
    });
  });
});

describe("SQLite outage", () => {
  test("write-locked by another connection past the busy timeout: 503 store_unavailable, then recovery", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-outage-"));
    const file = path.join(dir, "data.db");
    const store = await createStore(`sqlite:${file}`, TIMEOUTS);
    let s: Scenario | undefined;
    const other = new Database(file);
    try {
      s = await startScenario(identity, {}, {}, { store });
      // Another process (a backup, an operator's sqlite3 shell) holds the write lock.
      other.exec("BEGIN IMMEDIATE");
      await expectRpcUnavailable(await mcpCall(s, "gus", 9), 9);
      other.exec("ROLLBACK");
      await expectRecovered(s, "hal");
    } finally {
      if (other.inTransaction) other.exec("ROLLBACK");
      other.close();
      await s?.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
