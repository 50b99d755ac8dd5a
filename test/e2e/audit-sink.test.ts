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
import { StoreAuditSink } from "../../src/audit/store-sink.js";
import { AuditEvents, type Outcome } from "../../src/audit/events.js";
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
    // Two completions and the request event; the invocations of an answer that came whole are
    // `debug` events, which sinks do not keep.
    assert.equal(rows.length, 3, JSON.stringify(rows.map((r) => (r.value as { event?: string } | undefined)?.event)));
    assert.ok(rows.every((r) => r.expiresAt !== undefined));
    assert.ok(!JSON.stringify(rows).includes("argument-not-for-logs"));
    assert.ok(!gw.logs.join("\n").includes("argument-not-for-logs"));
  } finally {
    await gw.close();
    await store.close();
    await upstream.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("tollgate audit --json filters by user, upstream, tool and outcome together, newest first; bad filters are refused", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-audit-cli-"));
  const spec = `sqlite:${path.join(tmp, "audit.db")}`;
  const store = await createStore(spec, { projectDir: tmp, log: silentLogger });
  try {
    const sink = new StoreAuditSink(store, 1, silentLogger);
    let t = Date.UTC(2026, 0, 1);
    const call = (subjectId: string, upstreamServerId: string, capabilityName: string, outcome: Outcome) =>
      sink.write({ event: AuditEvents.capabilityCompleted, subjectId, upstreamServerId, capabilityName, outcome, mcpMethod: "tools/call", time: (t += 1000) });
    call("alice", "notes", "whoami", "success");
    call("alice", "notes", "whoami", "failure");
    call("alice", "mail", "whoami", "success");
    call("bob", "notes", "whoami", "success");
    call("alice", "notes", "echo", "success");
    call("alice", "notes", "whoami", "success");
    sink.write({ event: AuditEvents.upstreamConnectionEstablished, subjectId: "alice", upstreamServerId: "mail", time: (t += 1000) });
    await sink.close();

    const lines: string[] = [];
    const io = { stdout: (l: string) => lines.push(l), stderr: (l: string) => lines.push(l) };
    const env = { TOLLGATE_STORE: spec };
    const run = async (...args: string[]) => {
      lines.length = 0;
      const code = await main(["audit", "--project", tmp, ...args], env, io);
      return { code, out: lines.join("\n") };
    };
    const json = async (...args: string[]) => {
      const r = await run(...args, "--json");
      assert.equal(r.code, 0, r.out);
      return (JSON.parse(r.out) as Array<Record<string, unknown>>).map((e) => [e.subjectId, e.upstreamServerId, e.capabilityName, e.outcome]);
    };
    assert.deepEqual(await json("--user", "alice", "--upstream", "notes", "--tool", "whoami", "--outcome", "success"), [
      ["alice", "notes", "whoami", "success"],
      ["alice", "notes", "whoami", "success"],
    ]);
    assert.deepEqual(await json("--user", "bob"), [["bob", "notes", "whoami", "success"]]);
    assert.deepEqual(await json("--upstream", "mail"), [
      ["alice", "mail", undefined, undefined],
      ["alice", "mail", "whoami", "success"],
    ], "newest first, connection events included");
    assert.deepEqual(await json("--outcome", "failure"), [["alice", "notes", "whoami", "failure"]]);
    assert.deepEqual(await json("--tool", "echo", "--user", "bob"), []);
    assert.equal((await json("--user", "alice", "--limit", "2")).length, 2);

    const badOutcome = await run("--outcome", "denyed");
    assert.equal(badOutcome.code, 2);
    assert.match(badOutcome.out, /invalid --outcome "denyed" \(one of: success, failure, denied/);
    const badEvent = await run("--event", "tool_called");
    assert.equal(badEvent.code, 2);
    assert.match(badEvent.out, /invalid --event "tool_called" \(one of: mcp_request_accepted/);
    assert.equal((await run("--limit", "0")).code, 2);
  } finally {
    await store.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
