/** URL option helpers shared by policy schemas. */
import { z } from "zod";

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

/** True for `localhost`, `*.localhost`, 127.0.0.0/8 and ::1. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return LOOPBACK_HOSTS.has(h) || h.endsWith(".localhost") || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** An absolute `http:` or `https:` URL without credentials or fragment. */
export const httpUrlSchema = z.string().refine(
  (s) => {
    try {
      const u = new URL(s);
      return (u.protocol === "https:" || u.protocol === "http:") && !u.username && !u.password && !u.hash;
    } catch {
      return false;
    }
  },
  { error: "must be an absolute http(s) URL without credentials or fragment" },
);

/** True when `url` is plain http to a host that is not loopback (worth a warning or refusal). */
export function isInsecureRemote(url: string): boolean {
  const u = new URL(url);
  return u.protocol === "http:" && !isLoopbackHost(u.hostname);
}
