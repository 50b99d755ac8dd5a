/**
 * Request ids: random (version 4) UUIDs, as `crypto.randomUUID()` makes them, written as one
 * string. `randomUUID` assembles its text from 20 pieces, which allocates a chain of partial
 * strings per id (about 0.6 KB per request in the gateway's heap profile); here the 36
 * characters are written into a scratch buffer and read out once. The bytes come from the same
 * source (`crypto.randomFillSync`), drawn for 256 ids at a time.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9562#section-5.4 UUID version 4
 */
import { Buffer } from "node:buffer";
import { randomFillSync } from "node:crypto";

const IDS_PER_FILL = 256;
const pool = Buffer.allocUnsafeSlow(16 * IDS_PER_FILL);
let next = IDS_PER_FILL;
const text = Buffer.allocUnsafeSlow(36);
const HEX = Buffer.from("0123456789abcdef", "latin1");

/** A new random UUID (version 4, lower-case hex with dashes). */
export function newRequestId(): string {
  if (next === IDS_PER_FILL) {
    randomFillSync(pool);
    next = 0;
  }
  let i = next++ * 16;
  let o = 0;
  for (let k = 0; k < 16; k++, i++) {
    if (k === 4 || k === 6 || k === 8 || k === 10) text[o++] = 0x2d; // -
    let b = pool[i]!;
    if (k === 6) b = (b & 0x0f) | 0x40; // version 4
    else if (k === 8) b = (b & 0x3f) | 0x80; // variant 10
    text[o++] = HEX[b >> 4]!;
    text[o++] = HEX[b & 0x0f]!;
  }
  return text.toString("latin1", 0, 36);
}
