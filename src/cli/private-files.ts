/**
 * The gateway's own files (`.tollgate/`: the development key, the SQLite database) are readable
 * by their owner only, whatever the umask, and a folder an older version created too open is
 * tightened at start-up.
 */
import fs from "node:fs";
import type { Logger } from "../log.js";

/** Owner-only folder (drwx------). */
export const PRIVATE_DIR_MODE = 0o700;
/** Owner-only file (-rw-------). */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `dir` (and missing parents) as 0700, or narrows an existing one the process owns to
 * 0700 when group or others have any access. A folder owned by someone else is left as is,
 * with a warning. `mkdir`'s mode is filtered by the umask, so the mode is set explicitly.
 */
export function ensurePrivateDir(dir: string, log: Logger): void {
  const created = fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (created !== undefined) {
    fs.chmodSync(dir, PRIVATE_DIR_MODE);
    return;
  }
  narrow(dir, PRIVATE_DIR_MODE, log);
}

/** Narrows an existing path to `mode` when group or others have any access and the process owns it. */
function narrow(file: string, mode: number, log: Logger): void {
  const stat = fs.statSync(file);
  const was = (stat.mode & 0o777).toString(8);
  if ((stat.mode & 0o077) === 0) return;
  if (typeof process.getuid === "function" && stat.uid !== process.getuid()) {
    log.warn({ file, mode: was }, "accessible to others and not owned by this user: restrict it to its owner");
    return;
  }
  fs.chmodSync(file, mode);
  log.warn({ file, was, now: mode.toString(8) }, "was accessible to others: restricted to its owner");
}

/**
 * Writes `text` to a new file created 0600 (never briefly more open); fails with EEXIST when the
 * file exists, so two processes starting at once cannot overwrite each other's key.
 */
export function writePrivateFile(file: string, text: string): void {
  const fd = fs.openSync(file, "wx", PRIVATE_FILE_MODE);
  try {
    fs.fchmodSync(fd, PRIVATE_FILE_MODE);
    fs.writeSync(fd, text);
  } finally {
    fs.closeSync(fd);
  }
}

/** Narrows an existing file the process owns to 0600 when group or others have any access. */
export function ensurePrivateFile(file: string, log: Logger): void {
  narrow(file, PRIVATE_FILE_MODE, log);
}
