/**
 * `tollgate keys rotate` and `tollgate connections` against a project's SQLite store.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { createSecretBox, generateKey, parseKeyRing } from "../../src/store/crypto.js";
import { createStore } from "../../src/store/index.js";
import { openRecord, sealRecord } from "../../src/store/sealed.js";
import { runCli } from "../helpers/cli.js";
import { writeProject } from "../helpers/harness.js";

test("keys rotate re-encrypts stored secrets; connections lists them without secrets", async () => {
  const dir = await writeProject({});
  const storeSpec = `sqlite:${path.join(dir, ".tollgate", "data.db")}`;
  const oldKey = `old:${generateKey()}`;
  const newRing = `${oldKey},new:${generateKey()}`;

  const oldBox = createSecretBox(parseKeyRing(oldKey));
  let store = await createStore(storeSpec, { projectDir: dir });
  const key = "alice|linear";
  const createdAt = Date.UTC(2026, 0, 2, 3, 4, 5);
  await store.put("grants", key, sealRecord(oldBox, "grants", key, { accessToken: "at-secret-1" }, { sub: "alice", upstream: "linear", createdAt, expiresAt: createdAt + 3_600_000 }));
  await store.close();

  const listed = await runCli(["connections", "--project", dir], { TOLLGATE_STORE: storeSpec, TOLLGATE_ENCRYPTION_KEY: oldKey });
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /key=alice\|linear/);
  assert.match(listed.stdout, /sub=alice/);
  assert.match(listed.stdout, /upstream=linear/);
  assert.doesNotMatch(listed.stdout, /sealed|at-secret-1|v1\./);
  // Times are ISO 8601 in UTC, never milliseconds since the epoch.
  assert.match(listed.stdout, /createdAt=2026-01-02T03:04:05\.000Z/);
  assert.match(listed.stdout, /expiresAt=2026-01-02T04:04:05\.000Z/);
  assert.match(listed.stdout, /updatedAt=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/);
  assert.doesNotMatch(listed.stdout, /=\d{12,}\b/);
  const asJson = await runCli(["connections", "--json", "--project", dir], { TOLLGATE_STORE: storeSpec, TOLLGATE_ENCRYPTION_KEY: oldKey });
  assert.equal(asJson.code, 0, asJson.stderr);
  const [row] = JSON.parse(asJson.stdout) as Array<Record<string, unknown>>;
  assert.equal(row!.createdAt, "2026-01-02T03:04:05.000Z");

  const rotated = await runCli(["keys", "rotate", "--project", dir], { TOLLGATE_STORE: storeSpec, TOLLGATE_ENCRYPTION_KEY: newRing });
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.match(rotated.stdout, /re-encrypted 1 of 1 sealed record\(s\) with key "new"/);

  store = await createStore(storeSpec, { projectDir: dir });
  try {
    const rec = await store.get<{ sealed: string }>("grants", key);
    assert.ok(rec);
    assert.match(rec.value.sealed, /^v1\.new\./);
    const newOnly = createSecretBox(parseKeyRing(newRing).slice(1));
    assert.deepEqual(openRecord(newOnly, "grants", key, rec.value), { accessToken: "at-secret-1" });
  } finally {
    await store.close();
  }

  const again = await runCli(["keys", "rotate", "--project", dir], { TOLLGATE_STORE: storeSpec, TOLLGATE_ENCRYPTION_KEY: newRing });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /re-encrypted 0 of 1/);
});

test("keys rotate fails when a record cannot be opened with the configured keys", async () => {
  const dir = await writeProject({});
  const storeSpec = `sqlite:${path.join(dir, ".tollgate", "data.db")}`;
  const lost = createSecretBox(parseKeyRing(`lost:${generateKey()}`));
  const store = await createStore(storeSpec, { projectDir: dir });
  await store.put("grants", "bob|x", sealRecord(lost, "grants", "bob|x", { t: 1 }));
  await store.close();
  const r = await runCli(["keys", "rotate", "--project", dir], { TOLLGATE_STORE: storeSpec, TOLLGATE_ENCRYPTION_KEY: `k:${generateKey()}` });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot open grants\/bob\|x/);
});
