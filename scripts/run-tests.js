#!/usr/bin/env node
// Runs the whole test suite with node's built-in runner (Node 20 has no --test globbing).
// Usage: node scripts/run-tests.js [path-substring ...]  — filters test files by substring.
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { spawn } from "node:child_process";

const root = new URL("..", import.meta.url).pathname;
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    // The attacks with many sockets and long timeouts run separately: npm run test:abuse.
    if (dir === join(root, "test") && name === "abuse") continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith(".test.ts")) files.push(relative(root, p));
  }
}
for (const top of ["src", "test", "examples"]) {
  try {
    walk(join(root, top));
  } catch {
    // folder absent
  }
}
const filters = process.argv.slice(2);
const selected = files.sort().filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (selected.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
const child = spawn(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=180000", ...selected],
  { stdio: "inherit", cwd: root },
);
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
