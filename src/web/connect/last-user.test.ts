import assert from "node:assert/strict";
import { after, test } from "node:test";
import { testServices } from "../../../test/helpers/test-kit.js";
import type { GatewayServices, GatewaySettings } from "../../pipeline/services.js";
import { lastConnector, MAX_ENTRIES, rememberConnector } from "./last-user.js";

const opened: Array<{ close(): Promise<void> }> = [];
after(async () => {
  for (const s of opened) await s.close();
});
function services(over: Partial<GatewaySettings> = {}): GatewayServices {
  const s = testServices({ settings: over });
  opened.push(s);
  return s;
}

const AS = "https://notes.example";
/** A request carrying the cookie a Set-Cookie value sets. */
const withCookie = (setCookie?: string) =>
  new Request("http://gw.test/__tollgate/connections", setCookie ? { headers: { cookie: setCookie.split(";")[0]! } } : {});

test("unknown until someone connected from this browser; then same or different, per authorization server", () => {
  const s = services();
  assert.equal(lastConnector(withCookie(), s, AS, "alice"), "unknown");
  const set = rememberConnector(withCookie(), s, AS, "alice");
  assert.match(set, /^tollgate_upstream_users=[A-Za-z0-9_~:.-]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=34560000$/);
  assert.equal(lastConnector(withCookie(set), s, AS, "alice"), "same");
  assert.equal(lastConnector(withCookie(set), s, AS, "bob"), "different");
  assert.equal(lastConnector(withCookie(set), s, "https://other.example", "bob"), "unknown", "another server's session is not alice's");
  // Bob connects: he is now the last one there; alice's entry is replaced, not added.
  const next = rememberConnector(withCookie(set), s, AS, "bob");
  assert.equal(lastConnector(withCookie(next), s, AS, "bob"), "same");
  assert.equal(lastConnector(withCookie(next), s, AS, "alice"), "different");
  assert.equal(next.split(";")[0]!.split("~").length, 1);
});

test("the cookie holds no user name or issuer, only keyed hashes", () => {
  const s = services();
  const value = rememberConnector(withCookie(), s, AS, "alice@example.com").split(";")[0]!;
  assert.doesNotMatch(value, /alice|example|notes/i);
  // Another gateway key hashes the same subject differently (not linkable across gateways).
  const other = rememberConnector(withCookie(), services(), AS, "alice@example.com").split(";")[0]!;
  assert.notEqual(value.split(":")[1], other.split(":")[1]);
});

test("a forged, altered or foreign cookie counts as unknown", () => {
  const s = services();
  const set = rememberConnector(withCookie(), s, AS, "alice");
  const value = set.split(";")[0]!.slice("tollgate_upstream_users=".length);
  const [payload, mac] = [value.slice(0, value.lastIndexOf(".")), value.slice(value.lastIndexOf(".") + 1)];
  const cookie = (v: string) => new Request("http://gw.test/x", { headers: { cookie: `tollgate_upstream_users=${v}` } });
  const flip = (v: string) => `${v.slice(0, -1)}${v.endsWith("A") ? "B" : "A"}`;
  assert.equal(lastConnector(cookie(`${payload}.${mac}`), s, AS, "bob"), "different", "the untouched cookie is read");
  assert.equal(lastConnector(cookie(`${payload}.${flip(mac)}`), s, AS, "bob"), "unknown");
  assert.equal(lastConnector(cookie(`${flip(payload)}.${mac}`), s, AS, "bob"), "unknown");
  assert.equal(lastConnector(cookie(payload), s, AS, "bob"), "unknown");
  assert.equal(lastConnector(cookie("garbage"), s, AS, "bob"), "unknown");
  // Signed with another gateway's key.
  assert.equal(lastConnector(withCookie(set), services(), AS, "bob"), "unknown");
});

test("at most MAX_ENTRIES authorization servers, the oldest forgotten first", () => {
  const s = services();
  let set: string | undefined;
  for (let i = 0; i <= MAX_ENTRIES; i++) set = rememberConnector(withCookie(set), s, `https://as${i}.example`, "alice");
  assert.equal(lastConnector(withCookie(set), s, "https://as0.example", "alice"), "unknown");
  assert.equal(lastConnector(withCookie(set), s, "https://as1.example", "alice"), "same");
  assert.equal(lastConnector(withCookie(set), s, `https://as${MAX_ENTRIES}.example`, "alice"), "same");
  assert.ok(set!.length < 1024);
});

test("https origins: a __Host- cookie with Secure", () => {
  const s = services({ publicUrl: "https://gw.example" });
  const set = rememberConnector(withCookie(), s, AS, "alice");
  assert.match(set, /^__Host-tollgate_upstream_users=/);
  assert.match(set, /; Secure/);
  const req = new Request("https://gw.example/x", { headers: { cookie: set.split(";")[0]! } });
  assert.equal(lastConnector(req, s, AS, "alice"), "same");
});
