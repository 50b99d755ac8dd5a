import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { assertUrlAllowed, classifyAddress, createGuardedFetch, isNonPublicTarget } from "./ssrf.js";

test("classifies addresses", () => {
  const cases: Array<[string, string]> = [
    ["127.0.0.1", "loopback"],
    ["127.9.9.9", "loopback"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.1", "public"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "private"],
    ["169.254.169.254", "linklocal"],
    ["fe80::1", "linklocal"],
    ["fd00::1", "private"],
    ["0.0.0.0", "forbidden"],
    ["::", "forbidden"],
    ["224.0.0.1", "forbidden"],
    ["255.255.255.255", "forbidden"],
    ["ff02::1", "forbidden"],
    ["64:ff9b::a00:1", "forbidden"],
    ["::ffff:10.0.0.1", "private"],
    ["8.8.8.8", "public"],
    ["2606:4700::1111", "public"],
    ["not-an-ip", "forbidden"],
  ];
  for (const [ip, cls] of cases) assert.equal(classifyAddress(ip), cls, ip);
});

const strict = { allowPrivate: false, allowedHosts: [] as string[] };

test("refuses private, loopback and link-local targets unless allowed", async () => {
  await assert.rejects(assertUrlAllowed(new URL("https://127.0.0.1/x"), strict), { code: "upstream_url_blocked" });
  await assert.rejects(assertUrlAllowed(new URL("https://10.0.0.5/x"), strict), { code: "upstream_url_blocked" });
  await assert.rejects(assertUrlAllowed(new URL("https://[fe80::1]/x"), strict), { code: "upstream_url_blocked" });
  await assert.rejects(assertUrlAllowed(new URL("https://localhost/x"), strict), { code: "upstream_url_blocked" });
  await assertUrlAllowed(new URL("https://10.0.0.5/x"), { allowPrivate: true, allowedHosts: [] });
  await assertUrlAllowed(new URL("https://localhost/x"), { allowPrivate: false, allowedHosts: ["localhost"] });
  // Forbidden ranges stay forbidden even with every allowance.
  await assert.rejects(assertUrlAllowed(new URL("https://0.0.0.0/x"), { allowPrivate: true, allowedHosts: ["0.0.0.0"] }), {
    code: "upstream_url_blocked",
  });
});

test("plain http only to loopback; other schemes and URL credentials refused", async () => {
  const open = { allowPrivate: true, allowedHosts: [] };
  await assertUrlAllowed(new URL("http://127.0.0.1:9/x"), open);
  await assert.rejects(assertUrlAllowed(new URL("http://10.0.0.1/x"), open), { code: "upstream_url_blocked" });
  await assert.rejects(assertUrlAllowed(new URL("http://8.8.8.8/x"), open), { code: "upstream_url_blocked" });
  await assert.rejects(assertUrlAllowed(new URL("ftp://127.0.0.1/x"), open), { code: "upstream_url_blocked" });
  await assert.rejects(assertUrlAllowed(new URL("https://u:p@8.8.8.8/x"), open), { code: "upstream_url_blocked" });
});

test("the route's own upstream decides whether private targets are allowed", async () => {
  assert.equal(await isNonPublicTarget("http://127.0.0.1:3000/mcp"), true);
  assert.equal(await isNonPublicTarget("http://localhost:3000/mcp"), true);
  assert.equal(await isNonPublicTarget("https://10.2.3.4/mcp"), true);
  assert.equal(await isNonPublicTarget("https://8.8.8.8/mcp"), false);
});

let server: http.Server;
let base: string;
before(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/ok") return void res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    if (url.pathname === "/big") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(Buffer.alloc(64 * 1024, 0x20));
      return;
    }
    if (url.pathname === "/to-ok") return void res.writeHead(302, { location: "/ok" }).end();
    if (url.pathname === "/to-metadata") return void res.writeHead(302, { location: "http://169.254.169.254/latest/meta-data" }).end();
    if (url.pathname === "/to-private") return void res.writeHead(307, { location: "https://10.9.9.9/x" }).end();
    if (url.pathname === "/loop") return void res.writeHead(302, { location: "/loop" }).end();
    if (url.pathname === "/hang") return; // never answers
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

test("guarded fetch: loopback refused unless the upstream itself is local", async () => {
  const blocked = createGuardedFetch(strict);
  const open = createGuardedFetch({ allowPrivate: true, allowedHosts: [] });
  try {
    await assert.rejects(blocked(`${base}/ok`), { code: "upstream_url_blocked" });
    const res = await open(`${base}/ok`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true });
  } finally {
    await blocked.close();
    await open.close();
  }
});

test("guarded fetch: every redirect hop is checked, and manual redirects are not followed", async () => {
  const f = createGuardedFetch({ allowPrivate: true, allowedHosts: [], maxRedirects: 3 });
  try {
    assert.equal((await f(`${base}/to-ok`, { redirect: "follow" })).status, 200);
    assert.equal((await f(`${base}/to-ok`, { redirect: "manual" })).status, 302);
    await assert.rejects(f(`${base}/to-metadata`, { redirect: "follow" }), { code: "upstream_url_blocked" });
    const loop = await f(`${base}/loop`, { redirect: "follow" });
    assert.equal(loop.status, 302, "gives up after maxRedirects");
  } finally {
    await f.close();
  }
  const strictButLocal = createGuardedFetch({ allowPrivate: false, allowedHosts: ["127.0.0.1"] });
  try {
    await assert.rejects(strictButLocal(`${base}/to-private`, { redirect: "follow" }), { code: "upstream_url_blocked" });
  } finally {
    await strictButLocal.close();
  }
});

test("guarded fetch: size and time limits", async () => {
  const f = createGuardedFetch({ allowPrivate: true, allowedHosts: [], maxBytes: 1024, timeoutMs: 300 });
  try {
    await assert.rejects(f(`${base}/big`), { code: "upstream_response_too_large" });
    await assert.rejects(f(`${base}/hang`), (err: { code?: string }) => err.code === "upstream_unreachable");
  } finally {
    await f.close();
  }
});

test("numeric host spellings and IPv6 forms are judged after URL normalization", async () => {
  for (const host of ["2130706433", "017700000001", "0x7f.1", "127.1", "[::ffff:127.0.0.1]", "[::ffff:a00:1]", "[0:0:0:0:0:ffff:a9fe:a9fe]", "[fc00::1]", "[fe80::1%25eth0]", "100.64.1.1", "0.0.0.0", "[::]"]) {
    let url: URL;
    try {
      url = new URL(`https://${host}/x`);
    } catch {
      continue; // the URL parser refuses it: nothing to fetch
    }
    await assert.rejects(assertUrlAllowed(url, strict), { code: "upstream_url_blocked" }, host);
  }
});

test("the address is checked again when connecting: a DNS answer that changes after the check is refused", async () => {
  const dns = (await import("node:dns")).default;
  const realPromiseLookup = dns.promises.lookup;
  const realLookup = dns.lookup;
  // First answer (the check): a public address. Second answer (the connection): loopback.
  dns.promises.lookup = (async () => [{ address: "93.184.216.34", family: 4 }]) as never;
  dns.lookup = ((_host: string, _opts: unknown, cb: (e: null, a: unknown, f?: number) => void) => {
    const all = typeof _opts === "object" && _opts !== null && (_opts as { all?: boolean }).all;
    return all ? cb(null, [{ address: "127.0.0.1", family: 4 }]) : cb(null, "127.0.0.1", 4);
  }) as never;
  const port = (server.address() as AddressInfo).port;
  const f = createGuardedFetch({ ...strict, timeoutMs: 2000 });
  try {
    await assert.rejects(f(`https://rebind.tollgate.test:${port}/ok`), { code: "upstream_url_blocked" });
  } finally {
    dns.promises.lookup = realPromiseLookup;
    dns.lookup = realLookup;
    await f.close();
  }
});
