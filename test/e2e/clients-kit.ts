/**
 * Shared pieces of the real-client tests (`clients-*.test.ts`): the quickstart project (the
 * gateway as the MCP clients' authorization server with dev login, the bundled demo upstream with
 * its own OAuth) in a real gateway, and a chromium walk through whatever pages a flow shows —
 * the gateway's dev login, its consent (setup) page and Connect links, its connect confirmation,
 * the upstream's login — until a condition holds. The walk follows what is on the page, so it
 * does not depend on the order in which the pages come.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { startHelloServer } from "../../examples/demo-upstream/hello-server.js";
import { startOAuthUpstream, type OAuthUpstream } from "../fixtures/oauth-upstream.js";
import { startGateway, type RunningGateway } from "../helpers/harness.js";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const quickstartDir = path.join(root, "examples", "quickstart");

/** The quickstart running: the gateway, the demo upstream, and the anonymous hello upstream. */
export interface Quickstart {
  gw: RunningGateway;
  demo: OAuthUpstream;
  /** `<gateway>/mcp/demo`. */
  demoUrl: string;
  close(): Promise<void>;
}

export async function startQuickstart(): Promise<Quickstart> {
  const hello = await startHelloServer();
  const demo = await startOAuthUpstream();
  const gw = await startGateway({
    projectDir: quickstartDir,
    env: { TOLLGATE_DEV_LOGIN: "1", HELLO_UPSTREAM_URL: hello.url, DEMO_UPSTREAM_URL: demo.mcpUrl },
  }).catch(async (err) => {
    await demo.close();
    await hello.close();
    throw err;
  });
  return {
    gw,
    demo,
    demoUrl: `${gw.url}/mcp/demo`,
    async close() {
      await gw.close();
      await demo.close();
      await hello.close();
    },
  };
}

export interface WalkOptions {
  /** Name typed into the gateway's dev login. */
  gatewayUser: string;
  /** Name typed into the upstream's login (the upstream account). */
  upstreamAccount: string;
  upstreamOrigin: string;
  /** Connect the route's upstreams from the consent page before approving. */
  connectOnConsent: boolean;
  /** The walk ends when this holds for the current page. */
  until: (url: URL, page: Page) => boolean | Promise<boolean>;
  /** Every page the walk saw (URL and first heading), for assertions and failure messages. */
  seen?: Array<{ url: string; heading: string }>;
}

async function clickAndWait(page: Page, selector: string): Promise<void> {
  const before = page.url();
  await Promise.all([page.waitForURL((u) => u.href !== before, { timeout: 20_000 }), page.click(selector)]);
  await page.waitForLoadState("load").catch(() => {});
}

/**
 * Opens `start` in `page` and acts on each page until `until` holds: signs in, connects, approves.
 * Throws with the pages seen when a page offers nothing to do.
 */
export async function walk(page: Page, start: string, o: WalkOptions): Promise<void> {
  const seen = o.seen ?? [];
  await page.goto(start).catch(() => {}); // a callback on a closed client port is fine if `until` holds
  for (let step = 0; step < 16; step++) {
    await page.waitForLoadState("load").catch(() => {});
    const url = new URL(page.url());
    const heading = (await page.textContent("h1").catch(() => null))?.trim() ?? "";
    seen.push({ url: url.href.replace(/([?&](ticket|code|state)=)[^&]+/g, "$1…"), heading });
    if (await o.until(url, page)) return;
    if (url.origin === o.upstreamOrigin && (await page.$("input[name=username]"))) {
      await page.fill("input[name=username]", o.upstreamAccount);
      await clickAndWait(page, "button[type=submit]");
    } else if (await page.$("#username")) {
      await page.fill("#username", o.gatewayUser);
      await clickAndWait(page, "button[type=submit]");
    } else if (await page.$("button[value=connect]")) {
      await clickAndWait(page, "button[value=connect]");
    } else if (o.connectOnConsent && (await page.$("a.button:has-text('Connect')"))) {
      await clickAndWait(page, "a.button:has-text('Connect')");
    } else if (await page.$("button[value=approve]")) {
      await clickAndWait(page, "button[value=approve]");
    } else {
      throw new Error(`nothing to do on ${url.pathname} ("${heading}"); pages: ${JSON.stringify(seen)}`);
    }
  }
  throw new Error(`the walk did not finish; pages: ${JSON.stringify(seen)}`);
}

/** A fresh browser context and page; close the context when done. */
export async function newPage(browser: Browser): Promise<{ page: Page; close(): Promise<void> }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  return { page, close: () => context.close() };
}

/** Resolves with the first match of `pattern` in the text `onData` receives (e.g. a child's stderr). */
export function waitForText(subscribe: (onData: (chunk: string) => void) => void, pattern: RegExp, what: string, timeoutMs = 30_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`${what} did not appear; output so far:\n${text}`)), timeoutMs);
    subscribe((chunk) => {
      text += chunk;
      const m = pattern.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
  });
}

/** A loopback redirect URI that records the `code` it receives (an MCP client's callback). */
export async function startCallbackServer(): Promise<{ url: string; code(): string | null; close(): Promise<void> }> {
  const http = await import("node:http");
  let code: string | null = null;
  const server = http.createServer((req, res) => {
    code = new URL(req.url ?? "/", "http://127.0.0.1").searchParams.get("code") ?? code;
    res.writeHead(200, { "content-type": "text/plain" }).end("signed in");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as import("node:net").AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/callback`,
    code: () => code,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
