import { test } from "node:test";
import assert from "node:assert/strict";
import "./index.js";
import { setUpstreamApiKeyOptionsSchema } from "./options.js";
import { testGateway } from "../../../test/helpers/test-kit.js";

const route = (inbound: string[]) => [{ path: "/api", inbound }];

test("sets the key for the upstream and on the request; defaults to Authorization", async () => {
  const gw = await testGateway(
    [{ name: "key", exportName: "SetUpstreamApiKeyInboundPolicy", options: { value: "Bearer s3cret" } }],
    route(["key"]),
  );
  try {
    const res = await gw.gateway.fetch(new Request("http://gw.test/api", { headers: { authorization: "Bearer client-token" } }));
    const body = (await res.json()) as { upstreamHeaders: Record<string, string>; headers: Record<string, string> };
    assert.equal(res.status, 200);
    assert.deepEqual(body.upstreamHeaders, { authorization: "Bearer s3cret" });
    assert.equal(body.headers.authorization, "Bearer s3cret");
  } finally {
    await gw.close();
  }
});

test("custom header; overwrite=false keeps a value the client sent", async () => {
  const gw = await testGateway(
    [
      { name: "a", exportName: "SetUpstreamApiKeyInboundPolicy", options: { value: "k1", header: "X-Api-Key", overwrite: false } },
      { name: "b", exportName: "SetUpstreamApiKeyInboundPolicy", options: { value: "k2", header: "x-other", overwrite: false } },
    ],
    route(["a", "b"]),
  );
  try {
    const res = await gw.gateway.fetch(new Request("http://gw.test/api", { headers: { "x-api-key": "from-client" } }));
    const body = (await res.json()) as { upstreamHeaders: Record<string, string>; headers: Record<string, string> };
    assert.deepEqual(body.upstreamHeaders, { "x-other": "k2" });
    assert.equal(body.headers["x-api-key"], "from-client");
    assert.equal(body.headers["x-other"], "k2");
  } finally {
    await gw.close();
  }
});

test("overwrite=false on Authorization still sets the upstream credential (the inbound one is never forwarded)", async () => {
  const gw = await testGateway(
    [{ name: "a", exportName: "SetUpstreamApiKeyInboundPolicy", options: { value: "Bearer up", overwrite: false } }],
    route(["a"]),
  );
  try {
    const res = await gw.gateway.fetch(new Request("http://gw.test/api", { headers: { authorization: "Bearer client" } }));
    const body = (await res.json()) as { upstreamHeaders: Record<string, string>; headers: Record<string, string> };
    assert.equal(body.upstreamHeaders.authorization, "Bearer up");
    assert.equal(body.headers.authorization, "Bearer client");
  } finally {
    await gw.close();
  }
});

test("options: empty value (unset $env), bad header names and CRLF are config errors", () => {
  assert.equal(setUpstreamApiKeyOptionsSchema.safeParse({ value: "" }).success, false);
  assert.equal(setUpstreamApiKeyOptionsSchema.safeParse({}).success, false);
  assert.equal(setUpstreamApiKeyOptionsSchema.safeParse({ value: "a\r\nX-Evil: 1" }).success, false);
  assert.equal(setUpstreamApiKeyOptionsSchema.safeParse({ value: "k", header: "bad header" }).success, false);
  assert.equal(setUpstreamApiKeyOptionsSchema.safeParse({ value: "k", header: "Content-Length" }).success, false);
  assert.equal(setUpstreamApiKeyOptionsSchema.safeParse({ value: "k", extra: 1 }).success, false);
  const ok = setUpstreamApiKeyOptionsSchema.parse({ value: "k" });
  assert.deepEqual(ok, { value: "k", header: "Authorization", overwrite: true });
});
