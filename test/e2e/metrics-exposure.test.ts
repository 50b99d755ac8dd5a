/**
 * `/metrics` is never open on the public listener: 404 there by default, served on its own
 * loopback listener (`TOLLGATE_METRICS_PORT`), or on the public listener only with a bearer token
 * (`TOLLGATE_METRICS_TOKEN`). Runs the real server (`tollgate start` in process).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { runServer, type RunningServer } from "../../src/cli/run.js";
import { generateKey } from "../../src/store/crypto.js";
import { writeProject } from "../helpers/harness.js";

async function start(extra: Record<string, string>): Promise<{ running: RunningServer; lines: string[] }> {
  const dir = await writeProject({});
  const lines: string[] = [];
  const env = { TOLLGATE_ENCRYPTION_KEY: generateKey(), TOLLGATE_STORE: "memory:", TOLLGATE_LOG_LEVEL: "warn", ...extra };
  const running = await runServer({ projectDir: dir, host: "127.0.0.1", port: 0, env, watch: false, stdout: (l) => lines.push(l), stderr: (l) => lines.push(l) });
  assert.notEqual(typeof running, "number", lines.join("\n"));
  return { running: running as RunningServer, lines };
}

test("public /metrics is 404; the metrics listener on loopback answers 200", async () => {
  const { running, lines } = await start({ TOLLGATE_METRICS_PORT: "0" });
  try {
    const pub = await fetch(`${running.url}/metrics`);
    assert.equal(pub.status, 404);
    const at = lines.map((l) => /Metrics at (http:\/\/\S+)\/metrics/.exec(l)?.[1]).find(Boolean);
    assert.ok(at, lines.join("\n"));
    assert.match(at, /^http:\/\/127\.0\.0\.1:\d+$/);
    const own = await fetch(`${at}/metrics`);
    assert.equal(own.status, 200);
    const text = await own.text();
    assert.match(text, /tollgate_requests_total\{route="-",method="GET",status="404"\} 1/);
    assert.match(text, /# TYPE tollgate_mcp_capability_calls_total counter/);
    assert.equal((await fetch(`${at}/other`)).status, 404);
  } finally {
    await running.shutdown("test");
  }
});

test("with TOLLGATE_METRICS_TOKEN, public /metrics needs the bearer token", async () => {
  const token = "metrics-token-0123456789abcdef";
  const { running } = await start({ TOLLGATE_METRICS_TOKEN: token });
  try {
    assert.equal((await fetch(`${running.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${running.url}/metrics`, { headers: { authorization: "Bearer wrong-token-0123456789" } })).status, 401);
    const ok = await fetch(`${running.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /tollgate_requests_total/);
  } finally {
    await running.shutdown("test");
  }
});
