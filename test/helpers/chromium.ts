/**
 * Launching Debian's chromium through playwright-core for the browser e2e tests, and the one
 * skip rule they share: without the browser the tests are skipped, unless CI=true (then they
 * run and fail, so a CI machine without chromium cannot pass silently).
 */
import fs from "node:fs";
import { chromium, type Browser } from "playwright-core";

/** The chromium binary: `$CHROMIUM_PATH`, else Debian's `/usr/bin/chromium`. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** `node:test`'s `skip` option value: a reason when chromium is missing outside CI, else `false`. */
export const chromiumSkip: string | false =
  !fs.existsSync(CHROMIUM_PATH) && process.env.CI !== "true"
    ? `chromium not found at ${CHROMIUM_PATH} (apt-get install -y chromium)`
    : false;

/** Starts a headless chromium without sandbox, GPU, QUIC or background network traffic. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
