/** Plain-text output of the CLI (configuration problems, one per line, never a stack trace). */
import type { ConfigIssue } from "../project/types.js";
import { ProjectConfigError } from "../project/types.js";
import { EnvConfigError } from "./services.js";

/** Formats an issue as `file: path: message` (`file: message` when the path is empty). */
export function formatIssue(i: ConfigIssue): string {
  return `${i.file}${i.path ? `: ${i.path}` : ""}: ${i.message}`;
}

/** Writes every issue of a configuration error, plus a count, to `write`. */
export function printIssues(issues: ConfigIssue[], write: (line: string) => void): void {
  for (const i of issues) write(formatIssue(i));
  write(`${issues.length} configuration ${issues.length === 1 ? "problem" : "problems"} found`);
}

/** Writes the project's warnings (problems that do not stop it), one per line. */
export function printWarnings(warnings: ConfigIssue[], write: (line: string) => void): void {
  for (const w of warnings) write(`warning: ${formatIssue(w)}`);
}

/**
 * Prints a start-up failure without a stack trace when it is a known configuration problem.
 * Returns the exit code.
 */
export function reportFailure(err: unknown, write: (line: string) => void): number {
  if (err instanceof ProjectConfigError) {
    printIssues(err.issues, write);
    return 1;
  }
  if (err instanceof EnvConfigError) {
    write(`configuration error: ${err.message}`);
    return 1;
  }
  const e = err as { code?: string; message?: string };
  if (e?.code === "EADDRINUSE" || e?.code === "EACCES") {
    write(`cannot listen: ${e.message}`);
    return 1;
  }
  write(`error: ${e?.message ?? String(err)}`);
  if (process.env.TOLLGATE_DEBUG && err instanceof Error && err.stack) write(err.stack);
  return 1;
}
