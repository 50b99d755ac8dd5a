/**
 * Runs `node bin/tollgate.js …` as a child process for CLI tests. Built-ins that are not
 * registered in this build are stood in for by `fake-builtins-preload.ts` (a no-op once the real
 * ones exist). The child gets a clean environment: no TOLLGATE_* variables leak in from the
 * parent.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = path.join(ROOT, "bin/tollgate.js");
const PRELOAD = path.join(ROOT, "test/helpers/fake-builtins-preload.ts");

/** The parent's environment without TOLLGATE_*, PORT and NODE_ENV, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith("TOLLGATE_") || k === "PORT" || k === "NODE_ENV" || k === "NODE_OPTIONS") continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

const outputs = new WeakMap<ChildProcess, { stdout: string; stderr: string }>();

/** Starts the CLI with `args`; its output is collected (see {@link outputOf}). */
export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "--import", PRELOAD, BIN, ...args], {
    cwd: ROOT,
    env: cleanEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = { stdout: "", stderr: "" };
  outputs.set(child, out);
  child.stdout!.on("data", (c: Buffer) => (out.stdout += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (out.stderr += c.toString()));
  return child;
}

/** Everything the child has written so far. */
export function outputOf(child: ChildProcess): { stdout: string; stderr: string } {
  return outputs.get(child) ?? { stdout: "", stderr: "" };
}

/** Runs the CLI to completion. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnCli(args, env);
  const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  return { code, ...outputOf(child) };
}

/** Collects a child's output and resolves when a line matches `re`. */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${re}; output so far:\n${buf}`));
    }, timeoutMs);
    const onData = (c: Buffer) => {
      buf += c.toString();
      const m = buf.match(re);
      if (m) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`process exited (${code}) before ${re}; output:\n${buf}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout!.off("data", onData);
      child.stderr!.off("data", onData);
      child.off("exit", onExit);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", onExit);
  });
}

/** Resolves with the exit code once the child has exited. */
export function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}
