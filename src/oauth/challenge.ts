/**
 * Reading the upstream's `WWW-Authenticate` challenges: which protected resource metadata to
 * use, which scopes the upstream wants, and whether a 403 is a step-up (`insufficient_scope`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-11.6.1 WWW-Authenticate
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3 Bearer challenges
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1 resource_metadata
 */

/** One parsed challenge: the scheme (lower case) and its auth-params (names lower case). */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

/** The bits of a Bearer challenge the upstream OAuth client uses. */
export interface BearerChallengeInfo {
  resourceMetadata: string | undefined;
  scope: string | undefined;
  error: string | undefined;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;

/**
 * Parses a `WWW-Authenticate` header value into its challenges. Lenient: malformed tails are
 * dropped rather than thrown, since the header comes from a remote server.
 */
export function parseWwwAuthenticate(header: string | null | undefined): AuthChallenge[] {
  if (!header) return [];
  const out: AuthChallenge[] = [];
  let i = 0;
  const s = header;
  const skipWs = () => {
    while (i < s.length && (s[i] === " " || s[i] === "\t")) i++;
  };
  const token = (): string | undefined => {
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(s);
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  while (i < s.length) {
    skipWs();
    while (s[i] === ",") {
      i++;
      skipWs();
    }
    const scheme = token();
    if (!scheme) break;
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    skipWs();
    for (;;) {
      const save = i;
      skipWs();
      const name = token();
      if (!name) {
        i = save;
        break;
      }
      skipWs();
      if (s[i] !== "=") {
        // token68 or the next challenge's scheme
        if (Object.keys(challenge.params).length === 0 && s[i] !== ",") {
          while (i < s.length && s[i] !== ",") i++;
        } else i = save;
        break;
      }
      i++;
      skipWs();
      let value = "";
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === "\\" && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++;
      } else value = token() ?? "";
      challenge.params[name.toLowerCase()] = value;
      skipWs();
      if (s[i] === ",") {
        i++;
        continue;
      }
      break;
    }
  }
  return out;
}

/** Extracts the Bearer (or DPoP) challenge's `resource_metadata`, `scope` and `error`. */
export function bearerChallenge(header: string | null | undefined): BearerChallengeInfo {
  const all = parseWwwAuthenticate(header);
  const c = all.find((x) => x.scheme === "bearer") ?? all.find((x) => x.scheme === "dpop");
  return {
    resourceMetadata: c?.params.resource_metadata || undefined,
    scope: c?.params.scope?.trim() || undefined,
    error: c?.params.error || undefined,
  };
}
