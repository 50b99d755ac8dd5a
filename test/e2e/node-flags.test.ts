/**
 * The gateway's Node flags are the same wherever the project starts it for users (the container
 * image, `npm start`) and where the benchmark measures it, and Node accepts them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { GATEWAY_NODE_FLAGS } from "../../bench/targets.js";
import { ROOT } from "../helpers/cli.js";

test("node flags: the container image, npm start and the benchmark start the gateway with the same flags", () => {
  assert.ok(GATEWAY_NODE_FLAGS.length > 0);
  const dockerfile = fs.readFileSync(path.join(ROOT, "Dockerfile"), "utf8");
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile);
  assert.ok(entrypoint, "the Dockerfile has an exec-form ENTRYPOINT");
  assert.deepEqual(JSON.parse(entrypoint[1]!), ["node", ...GATEWAY_NODE_FLAGS, "/app/bin/tollgate.js"]);
  const quickstart = fs.readFileSync(path.join(ROOT, "scripts/start-quickstart.js"), "utf8");
  for (const flag of GATEWAY_NODE_FLAGS) assert.ok(quickstart.includes(`"${flag}"`), `npm start passes ${flag}`);
  const run = spawnSync(process.execPath, [...GATEWAY_NODE_FLAGS, "-e", "process.exit(0)"], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stderr, "");
});
