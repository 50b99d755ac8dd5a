/**
 * Test harness: write a project into a temp folder and run a real gateway on loopback port 0.
 *
 *   const dir = await writeProject({ "config/policies.json": `{ "policies": [] }`, … });
 *   const gw = await startGateway({ projectDir: dir });
 *   await fetch(`${gw.url}/healthz`);
 *   await gw.close();
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type http from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { buildServices } from "../../src/cli/services.js";
import { createGateway, type Gateway } from "../../src/gateway.js";
import { createLogger } from "../../src/log.js";
import type { GatewayServices, GatewaySettings } from "../../src/pipeline/services.js";
import { loadProject } from "../../src/project/load.js";
import { createNodeServer, type NodeServerOptions } from "../../src/server/node.js";
import type { EdgeLimits } from "../../src/server/limits.js";
import { generateKey } from "../../src/store/crypto.js";
import { MemoryStore } from "../../src/store/memory.js";
import type { Store } from "../../src/store/types.js";

const DEFAULT_ZUPLO = `{\n  // written by the test harness\n  "version": 1,\n  "compatibilityDate": "2026-03-01",\n}\n`;
const DEFAULT_ROUTES = `{ "openapi": "3.1.0", "info": { "title": "test", "version": "1" }, "paths": {} }\n`;

const tempDirs = new Set<string>();
process.once("exit", () => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * Writes a project into a new temp folder (removed when the process exits) and returns its path.
 * Keys are project-relative paths, values file contents (JSONC allowed). `zuplo.jsonc`
 * (compatibilityDate 2026-03-01) and an empty `config/routes.oas.json` are added unless given.
 */
export async function writeProject(files: Record<string, string>): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "tollgate-project-"));
  tempDirs.add(dir);
  const all: Record<string, string> = { "zuplo.jsonc": DEFAULT_ZUPLO, "config/routes.oas.json": DEFAULT_ROUTES, ...files };
  for (const [rel, text] of Object.entries(all)) {
    const file = path.join(dir, rel);
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(file, text);
  }
  return dir;
}

export interface StartGatewayOptions {
  projectDir: string;
  /** Environment for the project and services (the real process env is NOT used). */
  env?: Record<string, string>;
  /** Store to use (not closed by `close()`); default a fresh MemoryStore (closed by `close()`). */
  store?: Store;
  settings?: Partial<GatewaySettings>;
  /** Edge limits of the Node server (timeouts, caps, trusted proxies). */
  limits?: Partial<EdgeLimits>;
}

export interface RunningGateway {
  /** Origin, e.g. `http://127.0.0.1:40123` (no trailing slash). */
  url: string;
  gateway: Gateway;
  services: GatewayServices;
  /** The Node server in front of the gateway. */
  server: http.Server;
  /** Every JSON log line written so far. */
  logs: string[];
  close(): Promise<void>;
}

/**
 * The JSON log lines from index `from` on once `ready` holds for them: audit events of a request
 * are written shortly after its answer, not with it. Fails after `timeoutMs`.
 */
export async function logsWhen(
  gw: RunningGateway,
  from: number,
  ready: (lines: Array<Record<string, unknown>>) => boolean,
  timeoutMs = 10_000,
): Promise<Array<Record<string, unknown>>> {
  const until = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    const lines = gw.logs.slice(from).map((l) => JSON.parse(l) as Record<string, unknown>);
    if (ready(lines)) return lines;
    if (Date.now() > until) assert.fail(`the log lines did not come within ${timeoutMs} ms:\n${gw.logs.slice(from).join("\n")}`);
    await new Promise((r) => (i < 500 ? setImmediate(r) : setTimeout(r, 5)));
  }
}

/**
 * Loads the project, builds services (memory store and a random encryption key by default) and
 * serves the gateway with the real Node server on 127.0.0.1, port 0.
 */
export async function startGateway(opts: StartGatewayOptions): Promise<RunningGateway> {
  const logs: string[] = [];
  let pending = "";
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      pending += chunk.toString("utf8");
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line) logs.push(line);
      }
      cb();
    },
  });
  const env: Record<string, string> = { TOLLGATE_ENCRYPTION_KEY: generateKey(), ...opts.env };
  const log = createLogger({ level: env.TOLLGATE_LOG_LEVEL ?? "debug", destination });
  const project = await loadProject(opts.projectDir, { env });

  let gateway: Gateway | undefined;
  const serverOpts: NodeServerOptions = {
    maxBodyBytes: 4 * 1024 * 1024,
    gateway: () => {
      if (!gateway) throw new Error("gateway not ready");
      return gateway;
    },
    limits: opts.limits,
  };
  const server = createNodeServer(serverOpts);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const ownStore = opts.store === undefined;
  const store = opts.store ?? new MemoryStore();
  let services: GatewayServices;
  try {
    services = await buildServices({
      env: project.env,
      projectDir: project.dir,
      host: "127.0.0.1",
      port,
      store,
      log,
      overrides: opts.settings,
    });
    serverOpts.maxBodyBytes = services.settings.maxBodyBytes;
    gateway = await createGateway(project, services);
  } catch (err) {
    server.close();
    if (ownStore) await store.close();
    throw err;
  }
  const gw = gateway;
  let closed = false;
  return {
    url: `http://127.0.0.1:${port}`,
    gateway: gw,
    // The gateway's own services: its settings carry the base path the project chose.
    services: gw.services,
    server,
    logs,
    async close() {
      if (closed) return;
      closed = true;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await done;
      await gw.close();
      await services.dispatcher.close().catch(() => {});
      if (ownStore) await store.close();
    },
  };
}
