/**
 * The edge limits (`src/server/limits.ts`) from the environment: `TOLLGATE_*_TIMEOUT_MS`,
 * `TOLLGATE_MAX_*`, `TOLLGATE_TRUSTED_PROXIES`, `TOLLGATE_FORWARDED_HEADER`. Unset variables
 * keep their defaults; `TOLLGATE_MAX_CONNECTIONS` defaults to half the open-files limit.
 */
import { DEFAULT_EDGE_LIMITS, defaultMaxConnections, type EdgeLimits } from "../server/limits.js";
import { EnvConfigError, type Env } from "./services.js";
import { ClientAddressResolver } from "../server/client-address.js";

const NUMBERS: Array<[keyof EdgeLimits, string, number]> = [
  ["headersTimeoutMs", "TOLLGATE_HEADERS_TIMEOUT_MS", 1],
  ["requestTimeoutMs", "TOLLGATE_REQUEST_TIMEOUT_MS", 0],
  ["bodyIdleTimeoutMs", "TOLLGATE_BODY_IDLE_TIMEOUT_MS", 0],
  ["maxBufferedBodyBytes", "TOLLGATE_MAX_BUFFERED_BODY_BYTES", 1],
  ["maxHeaderCount", "TOLLGATE_MAX_HEADER_COUNT", 1],
  ["maxHeaderBytes", "TOLLGATE_MAX_HEADER_BYTES", 1024],
  ["maxConnections", "TOLLGATE_MAX_CONNECTIONS", 0],
  ["keepAliveTimeoutMs", "TOLLGATE_KEEP_ALIVE_TIMEOUT_MS", 1],
];

/** Reads and checks the edge limits; throws {@link EnvConfigError} naming the variable. */
export function edgeLimitsFromEnv(env: Env): EdgeLimits {
  const out: EdgeLimits = { ...DEFAULT_EDGE_LIMITS, trustedProxies: [], maxConnections: defaultMaxConnections() };
  for (const [key, name, min] of NUMBERS) {
    const raw = env[name]?.trim();
    if (!raw) continue;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min) throw new EnvConfigError(`${name} must be an integer ≥ ${min}, got "${raw}"`);
    (out[key] as number) = n;
  }
  const proxies = env.TOLLGATE_TRUSTED_PROXIES?.trim();
  if (proxies) {
    out.trustedProxies = proxies.split(",").map((s) => s.trim()).filter(Boolean);
    try {
      new ClientAddressResolver(out.trustedProxies);
    } catch (err) {
      throw new EnvConfigError((err as Error).message);
    }
  }
  const header = env.TOLLGATE_FORWARDED_HEADER?.trim().toLowerCase();
  if (header) {
    if (header !== "x-forwarded-for" && header !== "forwarded") {
      throw new EnvConfigError(`TOLLGATE_FORWARDED_HEADER must be "x-forwarded-for" or "forwarded", got "${header}"`);
    }
    out.forwardedHeader = header;
  }
  return out;
}
