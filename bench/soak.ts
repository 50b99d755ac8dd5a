/**
 * `npm run soak`: N users hold an MCP session each through the gateway for a while — the GET SSE
 * stream open, `tools/call` after `tools/call` — each with their own upstream OAuth grant, and
 * the gateway process's memory and open descriptors are compared between start and end.
 *
 *   npm run soak                                   # 20 users, 3 minutes
 *   npm run soak -- --users 5 --duration 30        # shorter
 *   npm run soak -- --interval-ms 50 --token-ttl 60 --settle 35 --workers 2 --store postgres://127.0.0.1/test
 *
 * Everything runs on 127.0.0.1: the gateway (`tollgate start`, its own process, the one measured),
 * the demo OAuth upstream (authorization server + MCP server, in this process), a JWKS server for
 * the callers' identity. Every user connects the upstream through the real flow (dev login,
 * confirmation, the upstream's login, callback); upstream access tokens live `--token-ttl`
 * seconds, so refreshes happen during the run. Each call is `whoami`, whose answer must be the
 * caller's own name (a call answered with another user's grant counts as an error).
 *
 * Needs Linux (`/proc` for RSS and descriptors). Not a test: it asserts nothing and exits 0 unless
 * the harness itself fails.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { generateKey } from "../src/store/crypto.js";
import { startOAuthUpstream, TestBrowser } from "../test/fixtures/oauth-upstream.js";
import { connectInBrowser, connectUrlOf, projectFiles, startIdentity } from "../test/e2e/upstream-oauth-kit.js";
import { haveProc, openFds, processTree, rssKiB } from "./proc.js";
import { INSPECT, startTollgate } from "./targets.js";

interface Args {
  users: number;
  durationS: number;
  intervalMs: number;
  tokenTtlS: number;
  /** Idle time after the clients closed before the last sample (keep-alive sockets expire). */
  settleS: number;
  /** Gateway worker processes (`TOLLGATE_WORKERS`); RSS and descriptors are summed over all. */
  workers: number;
  store: string | undefined;
}

function parseArgs(argv: string[]): Args {
  const out: Args = { users: 20, durationS: 180, intervalMs: 100, tokenTtlS: 60, settleS: 35, workers: 1, store: undefined };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    const num = () => {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} needs a non-negative number`);
      i++;
      return n;
    };
    if (flag === "--users") out.users = Math.max(1, Math.floor(num()));
    else if (flag === "--duration") out.durationS = num();
    else if (flag === "--interval-ms") out.intervalMs = num();
    else if (flag === "--token-ttl") out.tokenTtlS = Math.max(30, Math.floor(num()));
    else if (flag === "--settle") out.settleS = num();
    else if (flag === "--workers") out.workers = Math.max(1, Math.floor(num()));
    else if (flag === "--store") {
      out.store = value;
      i++;
    } else throw new Error(`unknown option ${flag} (known: --users, --duration, --interval-ms, --token-ttl, --settle, --workers, --store)`);
  }
  return out;
}

const log = (msg: string) => process.stdout.write(`${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Counts SSE responses to GET requests while their body is open (the client's server→client stream). */
class StreamCounter {
  open = 0;
  opened = 0;
  fetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const sse = (init?.method ?? "GET") === "GET" && res.ok && res.body && (res.headers.get("content-type") ?? "").startsWith("text/event-stream");
    if (!sse) return res;
    this.open++;
    this.opened++;
    let closed = false;
    const close = () => {
      if (!closed) (closed = true), this.open--;
    };
    const reader = res.body!.getReader();
    const tracked = new ReadableStream({
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            close();
            controller.close();
          } else controller.enqueue(value);
        } catch (err) {
          close();
          controller.error(err);
        }
      },
      cancel(reason) {
        close();
        return reader.cancel(reason);
      },
    });
    return new Response(tracked, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

interface Sample {
  label: string;
  rssMiB: number;
  fds: number;
  calls: number;
  errors: number;
  streams: number;
}

function table(rows: Sample[]): string {
  const head = "| when | gateway RSS (MiB) | gateway open fds | tool calls | errors | client GET streams open |";
  const line = "|---|---:|---:|---:|---:|---:|";
  const body = rows.map((r) => `| ${r.label} | ${r.rssMiB.toFixed(1)} | ${r.fds} | ${r.calls} | ${r.errors} | ${r.streams} |`);
  return [head, line, ...body].join("\n");
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!haveProc()) throw new Error("the soak needs Linux /proc to read the gateway's memory and descriptors");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-soak-"));
  const identity = await startIdentity();
  const upstream = await startOAuthUpstream({ accessTokenTtlSeconds: args.tokenTtlS });
  let gateway: Awaited<ReturnType<typeof startTollgate>> | undefined;
  const clients: Client[] = [];
  const errors = new Map<string, number>();
  const fail = (what: string) => errors.set(what, (errors.get(what) ?? 0) + 1);
  try {
    const projectDir = path.join(tmp, "project");
    for (const [rel, text] of Object.entries({
      "zuplo.jsonc": '{ "version": 1, "compatibilityDate": "2026-03-01" }\n',
      ...projectFiles(identity.jwks.url, upstream.mcpUrl),
    })) {
      fs.mkdirSync(path.dirname(path.join(projectDir, rel)), { recursive: true });
      fs.writeFileSync(path.join(projectDir, rel), text);
    }
    gateway = await startTollgate(
      projectDir,
      {
        TOLLGATE_STORE: args.store ?? `sqlite:${path.join(tmp, "soak.db")}`,
        TOLLGATE_ENCRYPTION_KEY: generateKey(),
        TOLLGATE_DEV_LOGIN: "1",
        TOLLGATE_WORKERS: String(args.workers),
      },
      [INSPECT],
    );
    const gwUrl = `http://127.0.0.1:${gateway.port}`;
    const pid = gateway.child.pid;
    log(`soak: ${args.users} users, ${args.durationS} s, a call every ${args.intervalMs} ms per user, upstream tokens live ${args.tokenTtlS} s`);
    log(`soak: gateway pid ${pid} (${args.workers} worker${args.workers > 1 ? "s, figures summed over the processes" : ""}) at ${gwUrl}, store ${args.store ?? "sqlite (temp file)"}`);

    // Connect every user through the real flow, then open their long-lived sessions.
    const streams = new StreamCounter();
    const users = Array.from({ length: args.users }, (_, i) => `soak-user-${String(i + 1).padStart(3, "0")}`);
    for (const user of users) {
      const bearer = await identity.token(user);
      const open = async () => {
        const client = new Client({ name: "soak", version: "1.0.0" }, { capabilities: { elicitation: { url: {} } } });
        const transport = new StreamableHTTPClientTransport(new URL(`${gwUrl}/mcp/notes`), {
          requestInit: { headers: { authorization: `Bearer ${bearer}` } },
          fetch: streams.fetch,
        });
        await client.connect(transport);
        return client;
      };
      let first: Client | undefined;
      let authUrl: string;
      try {
        first = await open();
        await first.listTools();
        throw new Error(`${user}: expected a connect-required answer before connecting`);
      } catch (err) {
        authUrl = connectUrlOf(err);
      } finally {
        await first?.close().catch(() => {});
      }
      const page = await connectInBrowser(new TestBrowser(), authUrl, user);
      if (page.status !== 200 || !/is connected/.test(page.text)) throw new Error(`${user}: connect flow ended at ${page.url.href} (${page.status})`);
      clients.push(await open());
    }
    // The SDK client opens its GET stream after initialize, without waiting for it.
    for (let i = 0; i < 100 && streams.open < clients.length; i++) await sleep(50);

    const tree = () => processTree(pid);
    const sample = async (label: string, calls: number): Promise<Sample> => {
      await gateway!.child.collectGarbage();
      const pids = tree();
      let errs = 0;
      for (const n of errors.values()) errs += n;
      return { label, rssMiB: rssKiB(pids) / 1024, fds: openFds(pids), calls, errors: errs, streams: streams.open };
    };
    const rows: Sample[] = [];
    let calls = 0;
    rows.push(await sample("start (users connected, streams open)", calls));

    const until = Date.now() + args.durationS * 1000;
    let peakRss = 0;
    const watcher = setInterval(() => (peakRss = Math.max(peakRss, rssKiB(tree()) / 1024)), 2_000);
    await Promise.all(
      clients.map(async (client, i) => {
        const user = users[i]!;
        while (Date.now() < until) {
          try {
            const r = (await client.callTool({ name: "whoami", arguments: {} })) as { content: Array<{ text?: string }> };
            const text = r.content.map((c) => c.text ?? "").join("");
            if (!text.includes(user)) fail("answer not for the caller");
          } catch (err) {
            const msg = (err as Error).message ?? String(err);
            const code = /"code":"([a-z_]+)"/.exec(msg)?.[1];
            fail(code ? `gateway answered ${code}` : msg.slice(0, 160));
          }
          calls++;
          if (args.intervalMs > 0) await sleep(args.intervalMs);
        }
      }),
    );
    clearInterval(watcher);
    rows.push(await sample("end (load stopped, sessions open)", calls));
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
    for (let i = 0; i < 100 && streams.open > 0; i++) await sleep(50);
    rows.push(await sample("end (clients closed)", calls));
    // Idle keep-alive sockets (client side 5 s, upstream pool 30 s) close by themselves; what
    // is left after that would be a leak.
    await sleep(args.settleS * 1000);
    rows.push(await sample(`end + ${args.settleS} s idle`, calls));

    log("");
    log(table(rows));
    log("");
    log(`peak gateway RSS during the run: ${peakRss.toFixed(1)} MiB; GET streams opened in all: ${streams.opened}`);
    log(`upstream token requests: ${JSON.stringify(upstream.tokenRequests)}`);
    log(`calls per second: ${(calls / Math.max(1, args.durationS)).toFixed(1)}`);
    const gatewayErrors = gateway.child.stderr.join("").split("\n").filter((l) => /"level":(50|60)/.test(l));
    log(`gateway error log lines (last 200 lines kept): ${gatewayErrors.length}`);
    for (const l of gatewayErrors.slice(0, 5)) log(`  ${l.slice(0, 400)}`);
    if (errors.size) {
      log("errors:");
      for (const [what, n] of errors) log(`  ${n} × ${what}`);
    } else log("errors: none");
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await gateway?.child.stop();
    await upstream.close();
    await identity.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
