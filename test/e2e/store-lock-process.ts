/**
 * Starts `store-lock-child.ts` as a real second process holding a store lock.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const CHILD = fileURLToPath(new URL("./store-lock-child.ts", import.meta.url));
const REFRESH_CHILD = fileURLToPath(new URL("./store-refresh-child.ts", import.meta.url));

/**
 * Spawns `store-refresh-child.ts`: it refreshes `grant` (sealed with `encryptionKey`) through
 * `tokenUrl`. The caller learns that the refresh is under way from its token endpoint.
 */
export function refreshInChild(spec: string, encryptionKey: string, grant: string, tokenUrl: string): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", REFRESH_CHILD, spec, encryptionKey, grant, tokenUrl], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  return child;
}

/** Spawns the child and resolves once it reports holding `name`. */
export async function lockInChild(spec: string, name: string, leaseMs: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, spec, name, String(leaseMs)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("locked\n")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`lock child exited (${code}): ${err}`)));
  });
  return child;
}

/** Kills the child without letting it clean up (a crash), and waits for it to be gone. */
export async function crash(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}
