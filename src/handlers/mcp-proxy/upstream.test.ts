import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable, Writable } from "node:stream";
import { GatewayError } from "../../errors.js";
import { endsEmpty } from "./upstream.js";

const signal = new AbortController().signal;

/** Collects a body the way the gateway sends it on: through `pipe`. */
function piped(body: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        out += chunk.toString("utf8");
        done();
      },
    });
    sink.on("finish", () => resolve(out)).on("error", reject);
    body.pipe(sink);
  });
}

test("endsEmpty: a body that ends without data is empty", async () => {
  assert.equal(await endsEmpty(Readable.from([]), signal), true);
});

test("endsEmpty: a body with data is not empty, and keeps all of its data", async () => {
  const body = Readable.from([Buffer.from("first "), Buffer.from("second")]);
  assert.equal(await endsEmpty(body, signal), false);
  assert.equal(await piped(body), "first second");
});

test("endsEmpty: a failing body rejects with an upstream error", async () => {
  const body = new Readable({
    read() {
      this.destroy(Object.assign(new Error("socket hang up"), { code: "UND_ERR_SOCKET" }));
    },
  });
  await assert.rejects(endsEmpty(body, signal), (err: unknown) => err instanceof GatewayError && err.code === "upstream_error");
});
