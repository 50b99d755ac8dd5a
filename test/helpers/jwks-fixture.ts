/**
 * Test-only: a real JWKS endpoint on loopback (port 0) whose key set can be rotated, and
 * helpers that sign tokens with real keys.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type CryptoKey } from "jose";

export interface TestKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

export async function makeKey(kid: string, alg = "RS256"): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, jwk };
}

export async function sign(key: TestKey, claims: JWTPayload, opts: { expSecondsFromNow?: number; nowMs?: number } = {}) {
  const now = Math.floor((opts.nowMs ?? Date.now()) / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "at+jwt" })
    .setIssuedAt(now)
    .setExpirationTime(now + (opts.expSecondsFromNow ?? 300))
    .sign(key.privateKey);
}

export interface JwksServer {
  url: string;
  /** Number of JWKS requests served. */
  hits(): number;
  setKeys(keys: TestKey[]): void;
  /** Answer 500 from now on (or again 200 with `false`). */
  fail(on: boolean): void;
  close(): Promise<void>;
}

export async function startJwksServer(keys: TestKey[]): Promise<JwksServer> {
  let current = keys;
  let count = 0;
  let failing = false;
  const server = http.createServer((req, res) => {
    count++;
    if (failing) {
      res.writeHead(500).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: current.map((k) => k.jwk) }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    hits: () => count,
    setKeys: (k) => void (current = k),
    fail: (on) => void (failing = on),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
