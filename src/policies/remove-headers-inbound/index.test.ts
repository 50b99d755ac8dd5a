import { test } from "node:test";
import assert from "node:assert/strict";
import "./index.js";
import "../set-headers-inbound/index.js";
import { removeHeadersOptionsSchema } from "./options.js";
import { testGateway } from "../../../test/helpers/test-kit.js";

test("remove-headers drops headers from the request and from queued upstream headers", async () => {
  const gw = await testGateway(
    [
      { name: "set", exportName: "SetHeadersInboundPolicy", options: { headers: [{ name: "X-Debug", value: "1" }, { name: "X-Ok", value: "1" }] } },
      { name: "rm", exportName: "RemoveHeadersInboundPolicy", options: { headers: ["x-debug", "Cookie"] } },
    ],
    [{ path: "/api", inbound: ["set", "rm"] }],
  );
  try {
    const res = await gw.gateway.fetch(new Request("http://gw.test/api", { headers: { cookie: "a=b", "x-debug": "c" } }));
    const body = (await res.json()) as { upstreamHeaders: Record<string, string>; headers: Record<string, string> };
    assert.deepEqual(body.upstreamHeaders, { "x-ok": "1" });
    assert.equal(body.headers.cookie, undefined);
    assert.equal(body.headers["x-debug"], undefined);
    assert.equal(body.headers["x-ok"], "1");
  } finally {
    await gw.close();
  }
});

test("options validation", () => {
  assert.equal(removeHeadersOptionsSchema.safeParse({ headers: [] }).success, false);
  assert.equal(removeHeadersOptionsSchema.safeParse({ headers: ["bad name"] }).success, false);
  assert.deepEqual(removeHeadersOptionsSchema.parse({ headers: ["X-A"] }), { headers: ["X-A"] });
});
