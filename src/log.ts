/**
 * Structured JSON logging (pino) with secret redaction.
 * Anything that could carry a credential is redacted by path; free-text messages must never
 * interpolate secrets in the first place.
 */
import { pino, type Logger } from "pino";

export type { Logger };

/** Paths pino censors wherever they appear in a log object. */
export const REDACT_PATHS = [
  "authorization",
  "*.authorization",
  "headers.authorization",
  "headers.cookie",
  "*.headers.authorization",
  "*.headers.cookie",
  "*.headers[\"set-cookie\"]",
  "token",
  "*.token",
  "access_token",
  "*.access_token",
  "refresh_token",
  "*.refresh_token",
  "id_token",
  "*.id_token",
  "code",
  "*.code",
  "code_verifier",
  "*.code_verifier",
  "client_secret",
  "*.client_secret",
  "clientSecret",
  "*.clientSecret",
  "ticket",
  "*.ticket",
  "password",
  "*.password",
  "secret",
  "*.secret",
];

/** Creates the gateway logger. `destination` is for tests that capture output. */
export function createLogger(
  opts: { level?: string; destination?: NodeJS.WritableStream } = {},
): Logger {
  const options = {
    level: opts.level ?? "info",
    base: { service: "tollgate" },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return opts.destination ? pino(options, opts.destination as never) : pino(options);
}

/** A logger that discards everything (unit tests). */
export const silentLogger: Logger = pino({ level: "silent" });
