/**
 * Project code on a route next to built-ins, through the real Node server: custom policies and
 * handlers get a real web `Request` (headers, body, `user` set by a built-in policy, params,
 * query), can hand a plain `Request` back, and a route made only of built-ins still answers the
 * same way. The gateway only builds web Requests where project code runs; these tests pin what
 * that code sees.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startGateway, writeProject, type RunningGateway } from "../helpers/harness.js";

const RUNTIME = "$import(@zuplo/runtime)";
let gw: RunningGateway;

const policies = {
  policies: [
    {
      name: "keys",
      policyType: "api-key-inbound",
      handler: { module: RUNTIME, export: "ApiKeyInboundPolicy", options: { consumers: [{ name: "agent", key: "k-0123456789abcdef" }] } },
    },
    { name: "inspect", policyType: "custom-code-inbound", handler: { module: "$import(./modules/inspect)", export: "inspect" } },
    {
      name: "tag",
      policyType: "set-headers-inbound",
      handler: { module: RUNTIME, export: "SetHeadersInboundPolicy", options: { headers: [{ name: "x-tag", value: "built-in" }] } },
    },
  ],
};

const routes = {
  openapi: "3.1.0",
  info: { title: "custom", version: "1" },
  paths: {
    "/items/{id}": {
      post: {
        operationId: "items",
        "x-zuplo-route": {
          handler: { module: "$import(./modules/inspect)", export: "describe" },
          policies: { inbound: ["keys", "inspect", "tag"] },
        },
      },
    },
    "/builtin/{id}": {
      post: {
        operationId: "builtin",
        "x-zuplo-route": {
          handler: { module: "$import(./modules/inspect)", export: "describe" },
          policies: { inbound: ["keys", "tag"] },
        },
      },
    },
  },
};

const inspectModule = `
export async function inspect(request, context) {
  if (!(request instanceof Request)) return new Response("not a web Request", { status: 500 });
  const body = await request.json();
  context.custom.seen = { user: request.user?.sub, body, header: request.headers.get("x-client"), id: request.params.id, q: request.query.q };
  // Hand back a plain Request with a changed header: the gateway keeps user, params and body.
  const headers = new Headers(request.headers);
  headers.set("x-client", "changed by policy");
  return new Request(request, { headers });
}

export async function describe(request, context) {
  return Response.json({
    web: request instanceof Request,
    seen: context.custom.seen ?? null,
    user: request.user?.sub ?? null,
    client: request.headers.get("x-client"),
    tag: request.headers.get("x-tag"),
    id: request.params.id,
    body: await request.text(),
    aborted: context.signal.aborted,
  });
}
`;

before(async () => {
  const dir = await writeProject({
    "config/policies.json": JSON.stringify(policies),
    "config/routes.oas.json": JSON.stringify(routes),
    "modules/inspect.ts": inspectModule,
  });
  gw = await startGateway({ projectDir: dir });
});
after(() => gw.close());

const call = (path: string) =>
  fetch(`${gw.url}${path}`, {
    method: "POST",
    headers: { authorization: "Bearer k-0123456789abcdef", "x-client": "original", "content-type": "application/json" },
    body: JSON.stringify({ hello: "world" }),
  });

test("custom policies and handlers see a real Request with everything the built-ins set", async () => {
  const res = await call("/items/42?q=find");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    web: true,
    seen: { user: "agent", body: { hello: "world" }, header: "original", id: "42", q: "find" },
    user: "agent",
    client: "changed by policy",
    tag: "built-in",
    id: "42",
    body: '{"hello":"world"}',
    aborted: false,
  });
});

test("a custom handler behind built-in policies only gets the same view", async () => {
  const res = await call("/builtin/7");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    web: true,
    seen: null,
    user: "agent",
    client: "original",
    tag: "built-in",
    id: "7",
    body: '{"hello":"world"}',
    aborted: false,
  });
});

test("a request refused by a built-in policy never reaches project code", async () => {
  const res = await fetch(`${gw.url}/items/1`, { method: "POST", body: "{}" });
  assert.equal(res.status, 401);
});
