import assert from "node:assert/strict";
import { test } from "node:test";
import { INSTANCE, newOwner, ownerIsGone } from "./owner.js";

test("owners name this process; live, foreign and unknown holders are not declared gone", () => {
  const mine = newOwner();
  assert.notEqual(mine, newOwner(), "one owner per acquisition");
  assert.ok(mine.startsWith(`${INSTANCE.host}|${process.pid}|${INSTANCE.start}|${INSTANCE.id}|`));
  assert.equal(ownerIsGone(mine), false, "this process is alive");
  assert.equal(ownerIsGone(`${INSTANCE.host}|${process.ppid}||other|a`), false, "the parent process is alive");
  assert.equal(ownerIsGone("0b0c1f9e-1c9a-4c0e-a3a3-2f0e3a1b0c9d"), false, "an owner of unknown format waits for its lease");
  assert.equal(ownerIsGone(`some-other-host|999999|1|other|a`), false, "a holder on another host waits for its lease");
});

test("a holder whose process has ended is gone", () => {
  // Pid numbers above the kernel's pid_max never exist.
  assert.equal(ownerIsGone(`${INSTANCE.host}|${2 ** 22 + 1}|1|other|a`), true);
});
