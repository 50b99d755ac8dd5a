/**
 * Reading a credential from a request header, e.g. `Authorization: Bearer <token>`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1 Authorization request header field
 */

/**
 * The credential in `headerName`. With a `scheme` (e.g. `Bearer`, matched case-insensitively)
 * the value must be `<scheme> <credential>`; with an empty scheme the whole value is the
 * credential. Returns undefined when the header is absent, empty or uses another scheme.
 */
export function readCredential(headers: Headers, headerName: string, scheme: string): string | undefined {
  const raw = headers.get(headerName);
  if (raw === null) return undefined;
  const value = raw.trim();
  if (scheme === "") return value === "" ? undefined : value;
  const space = value.indexOf(" ");
  if (space <= 0 || value.slice(0, space).toLowerCase() !== scheme.toLowerCase()) return undefined;
  const credential = value.slice(space + 1).trim();
  return credential === "" ? undefined : credential;
}
