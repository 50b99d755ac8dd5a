import { test } from "node:test";
import assert from "node:assert/strict";
import "./index.js";
import { setHeadersOptionsSchema } from "./options.js";
import { testGateway } from "../../../test/helpers/test-kit.js";

test("sets several headers in order, honouring overwrite per header", async () => {
  const gw = await testGateway(
    [
      {
        name: "h",
        exportName: "SetHeadersInboundPolicy",
        options: {
          headers: [
            { name: "X-Tenant", value: "acme" },
            { name: "X-Keep", value: "policy", overwrite: false },
            { name: "X-Replace", value: "policy" },
          ],
        },
      },
    ],
    [{ path: "/api", inbound: ["h"] }],
  );
  try {
    const res = await gw.gateway.fetch(
      new Request("http://gw.test/api", { headers: { "x-keep": "client", "x-replace": "client" } }),
    );
    const body = (await res.json()) as { upstreamHeaders: Record<string, string>; headers: Record<string, string> };
    assert.deepEqual(body.upstreamHeaders, { "x-tenant": "acme", "x-replace": "policy" });
    assert.equal(body.headers["x-keep"], "client");
    assert.equal(body.headers["x-replace"], "policy");
    assert.equal(body.headers["x-tenant"], "acme");
  } finally {
    await gw.close();
  }
});

test("options validation", () => {
  assert.equal(setHeadersOptionsSchema.safeParse({ headers: [] }).success, false);
  assert.equal(setHeadersOptionsSchema.safeParse({ headers: [{ name: "X-A" }] }).success, false);
  assert.equal(setHeadersOptionsSchema.safeParse({ headers: [{ name: "X-A", value: "a\nb" }] }).success, false);
  assert.equal(setHeadersOptionsSchema.safeParse({ headers: [{ name: "Transfer-Encoding", value: "x" }] }).success, false);
  assert.deepEqual(setHeadersOptionsSchema.parse({ headers: [{ name: "X-A", value: "" }] }), {
    headers: [{ name: "X-A", value: "", overwrite: true }],
  });
});
