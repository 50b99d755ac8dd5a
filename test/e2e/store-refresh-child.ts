/**
 * A separate gateway-like process for the crash-during-refresh tests: opens the store named by
 * argv[2] with the encryption key argv[3], and refreshes the grant argv[4] through the token
 * endpoint argv[5] (which the test holds without answering until it kills this process).
 */
import { silentLogger } from "../../src/log.js";
import { GrantManager } from "../../src/oauth/grants.js";
import { createSecretBox, parseKeyRing } from "../../src/store/crypto.js";
import { createStore } from "../../src/store/index.js";

const [spec, key, grant, tokenUrl] = process.argv.slice(2);
const store = await createStore(spec!, {});
const gm = new GrantManager({ store, secrets: createSecretBox(parseKeyRing(key!)), log: silentLogger, now: Date.now });
await gm.token(grant!, async (g) => {
  const res = await fetch(tokenUrl!, { method: "POST", body: g.secret.refreshToken! });
  return JSON.parse(await res.text());
});
