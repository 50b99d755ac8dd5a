/**
 * Which store failures are outages — the database is down, unreachable, too slow, out of disk —
 * as opposed to programming errors. Outages become {@link StoreUnavailableError} (503,
 * `store_unavailable`, `Retry-After`); anything else keeps propagating as it is (500).
 *
 * @see https://www.postgresql.org/docs/current/errcodes-appendix.html SQLSTATE classes
 * @see https://www.sqlite.org/rescode.html SQLite result codes
 */
import { GatewayError, StoreUnavailableError } from "../errors.js";

/** SQLSTATE classes of an unavailable server: connection exception, insufficient resources, operator intervention (incl. statement timeout), system error. */
const PG_OUTAGE_CLASSES = new Set(["08", "53", "57", "58"]);

/** SQLite primary result codes that are about the file or the machine, not the statement. */
const SQLITE_OUTAGE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|PROTOCOL|NOMEM|CORRUPT|NOTADB|NOLFS|PERM|AUTH)/;

/**
 * Maps an error thrown by the PostgreSQL driver: errors the server reported about the statement
 * (SQLSTATE outside the outage classes) stay as they are; everything else — refused, reset or
 * timed-out connections, pool timeouts, `query_timeout`, `statement_timeout` (57014), shutdowns —
 * is an outage.
 */
export function pgFailure(err: unknown): unknown {
  if (err instanceof GatewayError || err instanceof TypeError || err instanceof RangeError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const severity = (err as { severity?: unknown } | null)?.severity;
  const reportedByServer = typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && typeof severity === "string";
  if (reportedByServer && !PG_OUTAGE_CLASSES.has(code.slice(0, 2))) return err;
  return new StoreUnavailableError(err);
}

/** Maps an error thrown by better-sqlite3: file, disk and lock failures are outages. */
export function sqliteFailure(err: unknown): unknown {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && SQLITE_OUTAGE.test(code)) return new StoreUnavailableError(err);
  return err;
}
