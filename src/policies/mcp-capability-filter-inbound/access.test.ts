import { test } from "node:test";
import assert from "node:assert/strict";
import "./index.js";
import "../api-key-inbound/index.js";
import type { Handler } from "../../pipeline/types.js";
import { testGateway } from "../../../test/helpers/test-kit.js";
import { claimValues } from "./access.js";
import { capabilityFilterOptionsSchema } from "./options.js";

const paths = (o: unknown) => capabilityFilterOptionsSchema.safeParse(o).error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`) ?? [];

test("load-time errors of the access control modes", () => {
  assert.match(paths({ tools: [{ name: "a", roles: ["admin"] }] })[0]!, /^tools\.0: roles, groups and public need accessControl.mode "rolesAndGroups"/);
  assert.match(paths({ accessControl: { mode: "function" } })[0]!, /^accessControl\.identifier: is required/);
  assert.match(paths({ accessControl: { mode: "rolesAndGroups", identifier: { module: "$import(./m)", export: "f" } } })[0]!, /applies only to mode "function"/);
  const both = paths({ accessControl: { mode: "rolesAndGroups" }, prompts: [{ name: "p", public: true, groups: ["g"] }] });
  assert.match(both[0]!, /^prompts\.0\.public: an entry is either public or for roles\/groups/);
  assert.match(paths({ accessControl: { mode: "rolesAndGroups" }, tools: { allow: ["*"] } })[0]!, /^tools: mode "rolesAndGroups" needs a list/);
  assert.match(paths({ accessControl: { mode: "rolesAndGroups" }, tools: [{ name: "a", roles: [] }] })[0]!, /^tools\.0\.roles/);
  assert.match(paths({ tools: [{ name: "a", color: "red" }] })[0]!, /^tools\.0/);
  assert.match(paths({ accessControl: { mode: "owner" } })[0]!, /^accessControl\.mode/);
  const ok = capabilityFilterOptionsSchema.parse({ tools: ["a"] });
  assert.deepEqual(ok.accessControl, { mode: "allPublic", roleClaim: "roles", groupClaim: "groups" });
});

test("claimValues: whole claim names first, then dotted paths; strings and string lists", () => {
  const data = { roles: ["a", 1, "b"], "https://x.example/roles": "ns", realm_access: { roles: ["kc"] }, org: { team: "t1" } };
  assert.deepEqual(claimValues(data, "roles"), ["a", "b"]);
  assert.deepEqual(claimValues(data, "https://x.example/roles"), ["ns"]);
  assert.deepEqual(claimValues(data, "realm_access.roles"), ["kc"]);
  assert.deepEqual(claimValues(data, "org.team"), ["t1"]);
  assert.deepEqual(claimValues(data, "org.missing.deep"), []);
  assert.deepEqual(claimValues(undefined, "roles"), []);
});

const TOOLS = ["get_issue", "list_issues", "delete_issue", "create_issue", "upstream_only"].map((name) => ({ name, inputSchema: { type: "object" } }));

test("rolesAndGroups: each caller sees and calls what their roles and groups allow; markup never reaches clients", async () => {
  const calls: string[] = [];
  const handler: Handler = async (request) => {
    const m = JSON.parse(Buffer.from(await request.rawBytes()).toString("utf8"));
    if (m.method === "tools/list") return Response.json({ jsonrpc: "2.0", id: m.id, result: { tools: TOOLS } });
    calls.push(m.params.name);
    return Response.json({ jsonrpc: "2.0", id: m.id, result: { content: [] } });
  };
  const gw = await testGateway(
    [
      {
        name: "keys",
        exportName: "ApiKeyInboundPolicy",
        options: {
          allowUnauthenticatedRequests: true,
          consumers: [
            { name: "alice", key: "alice-key-0123456789", roles: ["admin"], metadata: { org: { teams: ["eng"] } } },
            { name: "bob", key: "bob-key-01234567890", metadata: { org: { teams: ["support"] } } },
          ],
        },
      },
      {
        name: "filter",
        exportName: "McpCapabilityFilterInboundPolicy",
        options: {
          accessControl: { mode: "rolesAndGroups", groupClaim: "org.teams" },
          tools: [
            { name: "get_issue", public: true, description: "Read one issue" },
            { name: "list_issues", groups: ["eng", "support"] },
            { name: "delete_issue", roles: ["admin"] },
            "create_issue",
          ],
        },
      },
    ],
    [{ path: "/mcp", inbound: ["keys", "filter"], mcp: true, handler }],
  );
  const post = (key: string | undefined, body: object) =>
    gw.gateway.fetch(
      new Request("http://gw.test/mcp", {
        method: "POST",
        headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, ...body }),
      }),
    );
  const names = async (key: string | undefined) => {
    const r = (await (await post(key, { method: "tools/list" })).json()) as { result: { tools: Array<Record<string, unknown>> } };
    for (const t of r.result.tools) assert.ok(!("roles" in t) && !("groups" in t) && !("public" in t));
    return r.result.tools.map((t) => t.name);
  };
  try {
    assert.deepEqual(await names("alice-key-0123456789"), ["get_issue", "list_issues", "delete_issue"]);
    assert.deepEqual(await names("bob-key-01234567890"), ["get_issue", "list_issues"]);
    assert.deepEqual(await names(undefined), ["get_issue"]);
    const refused = await post("bob-key-01234567890", { method: "tools/call", params: { name: "delete_issue", arguments: {} } });
    assert.deepEqual(await refused.json(), { jsonrpc: "2.0", id: 1, error: { code: -32601, message: "Method not found" } });
    const allowed = await post("alice-key-0123456789", { method: "tools/call", params: { name: "delete_issue", arguments: {} } });
    assert.equal(allowed.status, 200);
    assert.deepEqual(calls, ["delete_issue"]);
  } finally {
    await gw.close();
  }
});
