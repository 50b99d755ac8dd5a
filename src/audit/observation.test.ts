import assert from "node:assert/strict";
import { test } from "node:test";
import { plainSuccess } from "./observation.js";

const body = (s: string) => Buffer.from(s);

// The bytes are tried as they are; what they do not settle is parsed like any other answer.
test("plainSuccess: a success read from the bytes only where nothing else could be meant", () => {
  const ok = '{"result":{"content":[{"type":"text","text":"hello"}]},"jsonrpc":"2.0","id":1}';
  assert.equal(plainSuccess(body(ok), 1), true);
  assert.equal(plainSuccess(body('{"jsonrpc": "2.0", "id": 1, "result": {}}'), 1), true, "spaced");
  assert.equal(plainSuccess(body('{"jsonrpc":"2.0","id":"a-1","result":{}}\n'), "a-1"), true, "string id");
  assert.equal(plainSuccess(body('{"jsonrpc":"2.0","id":7,\n"result":{}}'), 7), true);

  // Everything else is left to the parser.
  assert.equal(plainSuccess(body('{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}'), 1), false, "an error");
  assert.equal(plainSuccess(body('{"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[]}}'), 1), false, "a tool error");
  assert.equal(plainSuccess(body('{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":false}}'), 1), true, "isError: false");
  assert.equal(plainSuccess(body('{"jsonrpc":"2.0","id":1,"result":{"isError" : false,"x":{"isError":false}}}'), 1), true);
  assert.equal(plainSuccess(body('{"jsonrpc":"2.0","id":1,"result":{"isError":false,"x":{"isError":1}}}'), 1), false, "any other isError");
  assert.equal(plainSuccess(body('{"jsonrpc":"2.0","id":1,"result":{"status":"error"}}'), 1), false, '"error" anywhere');
  assert.equal(plainSuccess(body('{"jsonrpc":"2.0","id":1,"\\u0065rror":{"code":1}}'), 1), false, "an escape could spell a key");
  assert.equal(plainSuccess(body('{"jsonrpc":"2.0","id":10,"result":{}}'), 1), false, "another id that starts alike");
  assert.equal(plainSuccess(body('{"jsonrpc":"2.0","id":"1","result":{}}'), 1), false, "a string id for a number id");
  assert.equal(plainSuccess(body('{"jsonrpc":"2.0","id":1}'), 1), false, "no result");
  assert.equal(plainSuccess(body(ok), undefined), false, "a call without an id");
  // A escaped quote in a tool's text does not end a key: `\"error\"` is not the key "error".
  assert.equal(plainSuccess(body('{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"no \\"error\\" here"}]}}'), 1), true);
});
