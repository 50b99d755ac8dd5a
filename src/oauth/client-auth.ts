/**
 * Client authentication at a token endpoint from configuration: `client_secret_post`,
 * `client_secret_basic` and `private_key_jwt` (an RFC 7523 client assertion signed with the
 * configured PKCS#8 key). Used by cross-app access for the IdP and the resource's authorization
 * server, and by manually registered upstream clients (`clientRegistration` `manual`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2 JWT for client authentication
 * @see https://openid.net/specs/openid-connect-core-1_0.html#ClientAuthentication
 */
import * as oauth from "oauth4webapi";
import { importPKCS8 } from "jose";

/** Signature algorithms accepted for `private_key_jwt`. */
export const CLIENT_ASSERTION_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"] as const;
export type ClientAssertionAlg = (typeof CLIENT_ASSERTION_ALGS)[number];

/** How `private_key_jwt` assertions are made, with the key not yet imported. */
export interface PrivateKeyJwtConfig {
  privateKeyPem: string;
  algorithm: ClientAssertionAlg;
  keyId?: string | undefined;
  /** `aud` of the assertion; default the token endpoint URL. */
  audience?: string | undefined;
  /** Assertion lifetime, seconds (1–3600). */
  expiresInSeconds: number;
}

/** A client's credentials at one token endpoint. */
export type ClientAuthConfig =
  | { method: "client_secret_post" | "client_secret_basic"; clientId: string; clientSecret: string }
  | ({ method: "private_key_jwt"; clientId: string } & PrivateKeyJwtConfig);

/** A `private_key_jwt` signer ready for use: the imported key and the assertion settings. */
export type ClientAssertionSigner = Omit<PrivateKeyJwtConfig, "privateKeyPem"> & { key: CryptoKey };

/** How the gateway authenticates to an upstream token endpoint. */
export type TokenEndpointAuthMethod = "client_secret_basic" | "client_secret_post" | "private_key_jwt" | "none";

/** The credentials of a client identity at one authorization server. */
export interface ClientCredentials {
  clientSecret?: string | undefined;
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** The signing key and assertion settings of a `private_key_jwt` client (manual registration). */
  assertionSigner?: ClientAssertionSigner | undefined;
}

/** A ready client authentication: the oauth4webapi client object and its `ClientAuth`. */
export interface PreparedClientAuth {
  client: oauth.Client;
  auth: oauth.ClientAuth;
}

/**
 * Imports the PKCS#8 key of a `private_key_jwt` configuration (literal `\n` sequences read as
 * newlines, for keys kept in one-line environment variables). A key that does not parse, or
 * does not fit the algorithm, throws here (at start-up), without the key in the message.
 */
export async function clientAssertionSigner(cfg: PrivateKeyJwtConfig): Promise<ClientAssertionSigner> {
  let key: CryptoKey;
  try {
    key = await importPKCS8(cfg.privateKeyPem.replace(/\\n/g, "\n"), cfg.algorithm);
  } catch {
    throw new Error(`privateKeyPem is not a PKCS#8 PEM private key usable with ${cfg.algorithm}`);
  }
  return { key, algorithm: cfg.algorithm, keyId: cfg.keyId, audience: cfg.audience, expiresInSeconds: cfg.expiresInSeconds };
}

/**
 * `private_key_jwt` client authentication: each token request carries a fresh assertion (`iss`
 * = `sub` = the client id, a new `jti`) with the configured `alg`, `kid`, audience (default the
 * token endpoint it is sent to) and lifetime.
 */
export function privateKeyJwt(signer: ClientAssertionSigner): oauth.ClientAuth {
  return (as, client, body, headers) =>
    oauth.PrivateKeyJwt(
      { key: signer.key, kid: signer.keyId },
      {
        [oauth.modifyAssertion]: (header, payload) => {
          header.alg = signer.algorithm;
          payload.aud = signer.audience ?? as.token_endpoint ?? as.issuer;
          payload.exp = (payload.iat as number) + signer.expiresInSeconds;
        },
      },
    )(as, client, body, headers);
}

/** application/x-www-form-urlencoded serialization of one value (the WHATWG/HTML rules). */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

/**
 * `client_secret_basic` with the credentials form-encoded by the HTML serializer RFC 6749
 * Appendix B refers to: unreserved characters such as `-` `.` `_` stay as they are, so
 * authorization servers that skip the decoding step still see the client id they issued.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
 */
export function clientSecretBasic(clientSecret: string): oauth.ClientAuth {
  return (_as, client, _body, headers) => {
    const pair = `${formEncode(client.client_id)}:${formEncode(clientSecret)}`;
    headers.set("authorization", `Basic ${Buffer.from(pair, "utf8").toString("base64")}`);
  };
}

/** oauth4webapi client authentication for a client identity's credentials. */
export function clientAuth(c: ClientCredentials): oauth.ClientAuth {
  switch (c.tokenEndpointAuthMethod) {
    case "client_secret_basic":
      return clientSecretBasic(c.clientSecret ?? "");
    case "client_secret_post":
      return oauth.ClientSecretPost(c.clientSecret ?? "");
    case "private_key_jwt":
      // A private_key_jwt identity only comes from configuration, whose key is imported at start-up.
      if (!c.assertionSigner) throw new Error("private_key_jwt client without a signing key");
      return privateKeyJwt(c.assertionSigner);
    default:
      return oauth.None();
  }
}

/** Prepares client authentication from configuration (parses private keys); call at start-up. */
export async function prepareClientAuth(cfg: ClientAuthConfig): Promise<PreparedClientAuth> {
  const client: oauth.Client = { client_id: cfg.clientId, token_endpoint_auth_method: cfg.method };
  if (cfg.method !== "private_key_jwt") {
    return { client, auth: cfg.method === "client_secret_post" ? oauth.ClientSecretPost(cfg.clientSecret) : clientSecretBasic(cfg.clientSecret) };
  }
  return { client, auth: privateKeyJwt(await clientAssertionSigner(cfg)) };
}
