#!/usr/bin/env node
// Entry point of the `tollgate` command. The gateway is written in TypeScript and runs through
// the tsx loader, so no build step is needed after `npm ci`.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
const code = await main(process.argv.slice(2), process.env);
if (code !== undefined) {
  process.exitCode = code;
  // The command is finished; a stray timer or socket must not keep the process alive.
  setTimeout(() => process.exit(code), 2000).unref();
}
