import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryStore } from "../store/memory.js";
import { completionEvent, ELICITATIONS_NS, Elicitations, MAX_IDS_PER_SESSION, sessionKey } from "./elicitations.js";

const flush = () => new Promise((r) => setImmediate(r));

test("session keys depend on route, subject and session id, and never contain the session id", () => {
  const k = sessionKey("notes-mcp", "alice", "abc.tag");
  assert.match(k, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(k, sessionKey("notes-mcp", "bob", "abc.tag"));
  assert.notEqual(k, sessionKey("other", "alice", "abc.tag"));
  assert.notEqual(sessionKey("1:a", "b", "s"), sessionKey("1", "a1:b", "s"));
});

test("the completion event is one SSE message with the notification", () => {
  const e = completionEvent("e-1");
  assert.ok(e.endsWith("\n\n"));
  assert.deepEqual(JSON.parse(e.split("\n")[1]!.slice(6)), { jsonrpc: "2.0", method: "notifications/elicitation/complete", params: { elicitationId: "e-1" } });
});

test("a completion in one process reaches the stream another process holds, exactly once", async () => {
  const store = new MemoryStore();
  const holder = new Elicitations(store);
  const bystander = new Elicitations(store);
  const callback = new Elicitations(store);
  const s1 = sessionKey("r", "alice", "sid-1");
  const s2 = sessionKey("r", "alice", "sid-2");
  const other = sessionKey("r", "bob", "sid-3");
  await holder.issued("notes", "alice", s1, "e1");
  await holder.issued("notes", "alice", s1, "e2");
  await holder.issued("notes", "alice", s2, "e3");
  await holder.issued("notes", "bob", other, "e4");
  await holder.issued("mail", "alice", s1, "e5");
  const got: string[][] = [];
  const gotBystander: string[][] = [];
  const detach = holder.attach(s1, (ids) => got.push(ids));
  const detachB = bystander.attach(sessionKey("r", "carol", "x"), (ids) => gotBystander.push(ids));
  await flush();
  assert.equal(got.length, 0, "nothing completed yet");

  await callback.completed("notes", "alice");
  await bystander.look();
  await holder.look();
  assert.deepEqual(got.map((ids) => ids.sort()), [["e1", "e2"]]);
  assert.equal(gotBystander.length, 0);
  await holder.look();
  assert.equal(got.length, 1, "delivered once");
  // e3's session has no stream yet: its completion waits in the outbox and arrives when one opens.
  const later: string[][] = [];
  const detach2 = holder.attach(s2, (ids) => later.push(ids));
  await flush();
  await flush();
  assert.deepEqual(later, [["e3"]]);
  // Bob's and the other upstream's elicitations are untouched.
  const left = (await store.list(ELICITATIONS_NS)).map((r) => r.key);
  assert.equal(left.length, 2);
  assert.ok(left.every((k) => k.startsWith("p:")));
  detach();
  detach2();
  detachB();
});

test("a completion in the holder's own process is delivered at once; detached streams get nothing", async () => {
  const store = new MemoryStore();
  const hub = new Elicitations(store);
  const s = sessionKey("r", "alice", "sid");
  const got: string[][] = [];
  const detach = hub.attach(s, (ids) => got.push(ids));
  await hub.issued("notes", "alice", s, "e1");
  await hub.completed("notes", "alice");
  assert.deepEqual(got, [["e1"]]);
  detach();
  assert.equal(hub.attached, 0);
  await hub.issued("notes", "alice", s, "e2");
  await hub.completed("notes", "alice");
  assert.deepEqual(got, [["e1"]]);
  assert.equal((await store.list(ELICITATIONS_NS, "o:")).length, 1, "kept for a stream that opens later");
});

test("one session gets at most the newest ids of one completion", async () => {
  const store = new MemoryStore();
  let t = 0;
  const hub = new Elicitations(store, () => ++t);
  const s = sessionKey("r", "alice", "sid");
  for (let i = 0; i < MAX_IDS_PER_SESSION + 5; i++) await hub.issued("notes", "alice", s, `e${i}`);
  await hub.issued("notes", "alice", s, "not an id!");
  const got: string[][] = [];
  const detach = hub.attach(s, (ids) => got.push(ids));
  await hub.completed("notes", "alice");
  detach();
  assert.equal(got.length, 1);
  assert.equal(got[0]!.length, MAX_IDS_PER_SESSION);
  assert.ok(!got[0]!.includes("e0") && got[0]!.includes(`e${MAX_IDS_PER_SESSION + 4}`));
});
