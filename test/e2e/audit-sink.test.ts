/**
 * The store sink and `tollgate audit`: a batched tools/call through the proxy (one member hidden
 * by the capability filter) lands in a SQLite store as one event per message, and the CLI lists
 * them filtered by tool and outcome, without the tool arguments.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { main } from "../../src/cli/main.js";
import { generateKey } from "../../src/store/crypto.js";
import { createStore } from "../../src/store/index.js";
import { silentLogger } from "../../src/log.js";
import { startMcpTestServer } from "../fixtures/mcp-servers.js";
import { startGateway } from "../helpers/harness.js";
import { proxyProject, rpc } from "./mcp-proxy-helpers.js";
import "../../src/policies/mcp-capability-filter-inbound/index.js";

test("store sink keeps one event per batch member; tollgate audit lists them by tool and outcome", async () => {
  const upstream = await startMcpTestServer({ mode: "stateless" });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-audit-"));
  const spec = `sqlite:${path.join(tmp, "audit.db")}`;
  const store = await createStore(spec, { projectDir: tmp, log: silentLogger });
  const filter = {
    name: "filter",
    policyType: "mcp-capability-filter-inbound",
    handler: { module: "$import(@zuplo/runtime/mcp-gateway)", export: "McpCapabilityFilterInboundPolicy", options: { tools: ["echo"] } },
  };
  const dir = await proxyProject([{ path: "/mcp", options: { rewritePattern: upstream.url }, inbound: ["filter"] }], [filter]);
  const key = generateKey();
  const gw = await startGateway({ projectDir: dir, store, env: { TOLLGATE_ENCRYPTION_KEY: key, TOLLGATE_AUDIT_SINK: "store", TOLLGATE_AUDIT_RETENTION_DAYS: "7" } });
  try {
    const body = `[${rpc("tools/call", { name: "echo", arguments: { text: "argument-not-for-logs" } }, 1)},${rpc("tools/call", { name: "sleep", arguments: { ms: 1 } }, 2)}]`;
    const res = await fetch(`${gw.url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25" },
      body,
    });
    assert.equal(res.status, 200);
    await res.text();
    await gw.services.audit!.close(); // writes what the sink has queued
    const lines: string[] = [];
    const io = { stdout: (l: string) => lines.push(l), stderr: (l: string) => lines.push(l) };
    const env = { TOLLGATE_STORE: spec, TOLLGATE_ENCRYPTION_KEY: key };
    assert.equal(await main(["audit", "--project", dir, "--event", "mcp_capability_completed", "--json"], env, io), 0);
    const completed = JSON.parse(lines.join("\n")) as Array<Record<string, unknown>>;
    assert.deepEqual(
      completed.map((e) => [e.capabilityName, e.outcome, e.reasonCode]).sort(),
      [["echo", "success", undefined], ["sleep", "denied", "capability_hidden"]],
    );
    lines.length = 0;
    assert.equal(await main(["audit", "--project", dir, "--tool", "sleep", "--outcome", "denied"], env, io), 0);
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0]!, /event=mcp_capability_completed .*capabilityName=sleep  outcome=denied/);
    lines.length = 0;
    assert.equal(await main(["audit", "--project", dir, "--event", "mcp_request_accepted", "--json"], env, io), 0);
    const request = JSON.parse(lines.join("\n")) as Array<Record<string, unknown>>;
    assert.deepEqual(request.map((e) => [e.mcpMethod, e.outcome]), [["batch", "partial"]]);
    const rows = await store.list("audit");
    assert.ok(rows.length >= 5 && rows.every((r) => r.expiresAt !== undefined));
    assert.ok(!JSON.stringify(rows).includes("argument-not-for-logs"));
    assert.ok(!gw.logs.join("\n").includes("argument-not-for-logs"));
  } finally {
    await gw.close();
    await store.close();
    await upstream.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
