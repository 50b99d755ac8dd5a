/**
 * Who holds a lock, and whether that holder is still alive.
 *
 * A lock owner string names the process instance that took the lock:
 * `<host>|<pid>|<start>|<instance>|<acquisition>`. `host` identifies the process namespace
 * (Linux: the boot id and the pid namespace; elsewhere the host name), `start` the process's start
 * time in clock ticks since boot (Linux; empty elsewhere) so a reused pid is not mistaken for the
 * holder. Another process in the same namespace can then tell, without waiting for a lease to
 * lapse, that the holder is gone (`kill -9`, a crash, an OOM kill) and take the lock over at once.
 * Holders elsewhere (another host, another container) are judged by their lease alone.
 *
 * @see https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html field 22 `starttime`
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";

/** This process: the parts of every owner string it writes. */
export interface ProcessInstance {
  /** Random per process start; names the instance in logs and lock rows. */
  readonly id: string;
  readonly pid: number;
  readonly host: string;
  readonly start: string;
}

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

function hostKey(): string {
  const boot = read("/proc/sys/kernel/random/boot_id")?.trim();
  let ns: string | undefined;
  try {
    ns = fs.readlinkSync("/proc/self/ns/pid");
  } catch {
    ns = undefined;
  }
  // `|` separates owner fields; keep it out of the host part.
  return (boot && ns ? `${boot}/${ns}` : `host:${os.hostname()}`).replace(/\|/g, "_");
}

/** State and start time of `pid` from `/proc/<pid>/stat`, or undefined when there is none. */
function procStat(pid: number): { state: string; start: string } | undefined {
  const text = read(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  // The command name (field 2) may hold spaces and parentheses: split after its last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", start: fields[19] ?? "" };
}

const hasProc = fs.existsSync("/proc/self/stat");

/** This process, computed once. */
export const INSTANCE: ProcessInstance = {
  id: randomUUID(),
  pid: process.pid,
  host: hostKey(),
  start: (hasProc && procStat(process.pid)?.start) || "",
};

/** A fresh owner string for one lock acquisition by this process. */
export function newOwner(): string {
  return [INSTANCE.host, INSTANCE.pid, INSTANCE.start, INSTANCE.id, randomUUID()].join("|");
}

/**
 * True only when `owner` names a process in this namespace that has certainly ended (no such
 * pid, a zombie, or a different process now using its pid). Unknown formats, other hosts and
 * live processes are false: their lease decides.
 */
export function ownerIsGone(owner: string): boolean {
  const [host, pidText, start, id] = owner.split("|");
  if (host !== INSTANCE.host || !pidText || id === undefined) return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === INSTANCE.pid) return id !== INSTANCE.id && start !== INSTANCE.start;
  if (hasProc) {
    const st = procStat(pid);
    if (!st) return true;
    if (st.state === "Z" || st.state === "X") return true;
    return start !== "" && st.start !== start;
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}
