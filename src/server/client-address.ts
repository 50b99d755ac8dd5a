/**
 * The client's address when the gateway runs behind reverse proxies. The TCP peer is the client
 * unless it is one of the configured trusted proxies (`TOLLGATE_TRUSTED_PROXIES`, a CIDR list,
 * default none); then the forwarding field the proxies append to (`X-Forwarded-For`, or
 * `Forwarded` with `TOLLGATE_FORWARDED_HEADER=forwarded`) is read from the right, skipping
 * trusted hops, and the first address not trusted is the client — what nginx's `real_ip` module
 * does with `real_ip_recursive on`, and Envoy with `xff_num_trusted_hops`. A client cannot
 * choose its own address: whatever it writes into the field sits left of the first hop the
 * gateway trusts.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7239 Forwarded
 * @see https://nginx.org/en/docs/http/ngx_http_realip_module.html
 */
import net from "node:net";

/** Thrown at start-up for an entry of the list that is not an address or CIDR range. */
export class TrustedProxyError extends Error {
  constructor(entry: string) {
    super(`TOLLGATE_TRUSTED_PROXIES: "${entry}" is not an IP address or CIDR range (e.g. 10.0.0.0/8, ::1)`);
    this.name = "TrustedProxyError";
  }
}

/** `::ffff:1.2.3.4` → `1.2.3.4`, so one IPv4 range covers dual-stack sockets too. */
function unmap(address: string): string {
  return address.startsWith("::ffff:") && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** An address from a forwarding field: `1.2.3.4`, `1.2.3.4:80`, `[v6]`, `[v6]:80`, `"…"`. */
function parseAddress(raw: string): string | undefined {
  let v = raw.trim();
  if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
  if (v.startsWith("[")) {
    const end = v.indexOf("]");
    v = end > 0 ? v.slice(1, end) : "";
  } else if (v.indexOf(":") === v.lastIndexOf(":") && v.includes(".")) v = v.split(":")[0]!;
  return net.isIP(v) ? unmap(v) : undefined;
}

/** The `for=` values of a `Forwarded` field, in order. */
function forwardedFor(value: string): string[] {
  const out: string[] = [];
  for (const element of value.split(",")) {
    for (const pair of element.split(";")) {
      const eq = pair.indexOf("=");
      if (eq > 0 && pair.slice(0, eq).trim().toLowerCase() === "for") out.push(pair.slice(eq + 1));
    }
  }
  return out;
}

export class ClientAddressResolver {
  readonly #trusted = new net.BlockList();

  /** Parses the list; throws {@link TrustedProxyError} for a bad entry. */
  constructor(
    ranges: string[],
    private readonly field: "x-forwarded-for" | "forwarded" = "x-forwarded-for",
  ) {
    for (const entry of ranges) {
      const [addr, prefix, extra] = entry.split("/");
      const ip = addr ? unmap(addr.trim()) : "";
      const type = net.isIPv4(ip) ? "ipv4" : net.isIPv6(ip) ? "ipv6" : undefined;
      if (!type || extra !== undefined) throw new TrustedProxyError(entry);
      if (prefix === undefined) {
        this.#trusted.addAddress(ip, type);
        continue;
      }
      const bits = Number(prefix);
      if (!/^\d{1,3}$/.test(prefix) || bits > (type === "ipv4" ? 32 : 128)) throw new TrustedProxyError(entry);
      this.#trusted.addSubnet(ip, bits, type);
    }
  }

  trusts(address: string): boolean {
    const a = unmap(address);
    return this.#trusted.check(a, net.isIPv4(a) ? "ipv4" : "ipv6");
  }

  /** The client's address, given the TCP peer's and the request's forwarding field. */
  resolve(peer: string | undefined, fieldValue: string | undefined): string | undefined {
    if (!peer || !fieldValue || !this.trusts(peer)) return peer;
    const hops = this.field === "forwarded" ? forwardedFor(fieldValue) : fieldValue.split(",");
    let client = unmap(peer);
    for (let i = hops.length - 1; i >= 0; i--) {
      const address = parseAddress(hops[i]!);
      // "unknown", an obfuscated name or garbage: the hop that wrote it is as far as we can see.
      if (!address) break;
      client = address;
      if (!this.trusts(address)) break;
    }
    return client;
  }
}
