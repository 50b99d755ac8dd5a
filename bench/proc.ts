/**
 * Reading a process's CPU time and resident memory from `/proc` (Linux only). Both include the
 * process's descendants, so a CLI that re-executes itself is still measured as one gateway.
 *
 * @see https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Fields of /proc/<pid>/stat after the `(comm)` field, which may itself contain spaces. */
function statFields(pid: number): string[] | undefined {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return raw.slice(raw.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** `pid` and every live descendant. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (!f) continue;
    const ppid = Number(f[1]); // field 4 overall: ppid
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/**
 * Nanoseconds the threads of `pid` have run, from each thread's `schedstat` (its first field:
 * time on the CPU, in ns); undefined where the kernel does not provide it. Threads that have
 * exited are not counted: a Node process's threads (V8's platform workers, libuv's pool) live
 * as long as it does.
 */
function runNanos(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ", 1)[0]);
      } catch {
        // the thread has just exited
      }
    }
    return ns;
  } catch {
    return undefined;
  }
}

let schedstat: boolean | undefined;

/**
 * CPU time (user + system) of a process tree, in microseconds. Read from the threads'
 * `schedstat` (nanoseconds) where the kernel has it, else from `stat` (clock ticks: 10 ms, which
 * over a window of 1,000 requests is a step of 10 µs per request).
 *
 * @see https://docs.kernel.org/scheduler/sched-stats.html
 */
export function cpuMicros(pids: number[]): number {
  schedstat ??= runNanos(process.pid) !== undefined;
  if (schedstat) {
    let ns = 0;
    for (const pid of pids) ns += runNanos(pid) ?? 0;
    return ns / 1000;
  }
  let ticks = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (f) ticks += Number(f[11]) + Number(f[12]); // fields 14 (utime) and 15 (stime)
  }
  return (ticks / clockTicks()) * 1e6;
}

/** Resident set size of a process tree, in KiB. */
export function rssKiB(pids: number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) kib += Number(m[1]);
    } catch {
      // process gone
    }
  }
  return kib;
}

/** Open file descriptors (sockets, files, pipes) of a process tree. */
export function openFds(pids: number[]): number {
  let n = 0;
  for (const pid of pids) {
    try {
      n += fs.readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // process gone
    }
  }
  return n;
}

/** True when `/proc` is readable (Linux). */
export function haveProc(): boolean {
  return fs.existsSync(`/proc/${process.pid}/stat`);
}
