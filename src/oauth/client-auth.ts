/**
 * Client authentication at a token endpoint from configuration: `client_secret_post`,
 * `client_secret_basic` and `private_key_jwt` (an RFC 7523 client assertion signed with the
 * configured PKCS#8 key). Used by cross-app access for the IdP and the resource's authorization
 * server.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2 JWT for client authentication
 * @see https://openid.net/specs/openid-connect-core-1_0.html#ClientAuthentication
 */
import * as oauth from "oauth4webapi";
import { importPKCS8 } from "jose";
import { clientSecretBasic } from "./flow.js";

/** Signature algorithms accepted for `private_key_jwt`. */
export const CLIENT_ASSERTION_ALGS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"] as const;

/** A client's credentials at one token endpoint. */
export type ClientAuthConfig =
  | { method: "client_secret_post" | "client_secret_basic"; clientId: string; clientSecret: string }
  | {
      method: "private_key_jwt";
      clientId: string;
      privateKeyPem: string;
      algorithm: (typeof CLIENT_ASSERTION_ALGS)[number];
      keyId?: string | undefined;
      /** `aud` of the assertion; default the token endpoint URL. */
      audience?: string | undefined;
      /** Assertion lifetime, seconds (1–3600). */
      expiresInSeconds: number;
    };

/** A ready client authentication: the oauth4webapi client object and its `ClientAuth`. */
export interface PreparedClientAuth {
  client: oauth.Client;
  auth: oauth.ClientAuth;
}

/**
 * Prepares client authentication for `tokenUrl`. A private key that does not parse, or does
 * not fit the algorithm, throws here (at start-up), without the key in the message.
 */
export async function prepareClientAuth(cfg: ClientAuthConfig, tokenUrl: string): Promise<PreparedClientAuth> {
  const client: oauth.Client = { client_id: cfg.clientId, token_endpoint_auth_method: cfg.method };
  if (cfg.method !== "private_key_jwt") {
    return { client, auth: cfg.method === "client_secret_post" ? oauth.ClientSecretPost(cfg.clientSecret) : clientSecretBasic(cfg.clientSecret) };
  }
  let key: CryptoKey;
  try {
    key = await importPKCS8(cfg.privateKeyPem.replace(/\\n/g, "\n"), cfg.algorithm);
  } catch {
    throw new Error(`privateKeyPem is not a PKCS#8 PEM private key usable with ${cfg.algorithm}`);
  }
  const audience = cfg.audience ?? tokenUrl;
  const lifetime = cfg.expiresInSeconds;
  const auth = oauth.PrivateKeyJwt(
    { key, kid: cfg.keyId },
    {
      [oauth.modifyAssertion]: (header, payload) => {
        header.alg = cfg.algorithm;
        payload.aud = audience;
        payload.exp = (payload.iat as number) + lifetime;
      },
    },
  );
  return { client, auth };
}
