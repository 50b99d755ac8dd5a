import { test } from "node:test";
import assert from "node:assert/strict";
import { compileFilter, uriTemplateRegex } from "./filter.js";
import { capabilityFilterOptionsSchema } from "./options.js";

const compile = (o: unknown) => compileFilter(capabilityFilterOptionsSchema.parse(o));
const call = (method: string, params: Record<string, unknown>) => ({ jsonrpc: "2.0", id: 1, method, params });

test("allow-list form: exact names, projections override description/annotations/_meta only", () => {
  const f = compile({
    tools: ["list_issues", { name: "create_issue", description: "Create one issue", annotations: { destructiveHint: false }, _meta: { x: 1 } }],
  });
  const result = f.rewriteList("tools", {
    tools: [
      { name: "list_issues", description: "up" },
      { name: "create_issue", description: "up", annotations: { readOnlyHint: false }, _meta: { y: 2 } },
      { name: "delete_issue" },
      { name: "List_issues" },
      { description: "no name" },
    ],
    nextCursor: "c2",
  });
  assert.deepEqual(result, {
    tools: [
      { name: "list_issues", description: "up" },
      {
        name: "create_issue",
        description: "Create one issue",
        annotations: { readOnlyHint: false, destructiveHint: false },
        _meta: { y: 2, x: 1 },
      },
    ],
    nextCursor: "c2",
  });
  assert.equal(f.blocks(call("tools/call", { name: "delete_issue" })), true);
  assert.equal(f.blocks(call("tools/call", { name: "list_issues" })), false);
  assert.equal(f.blocks(call("prompts/get", { name: "anything" })), false, "prompts omitted: pass through");
});

test("empty array hides everything of that type", () => {
  const f = compile({ prompts: [] });
  assert.deepEqual(f.rewriteList("prompts", { prompts: [{ name: "a" }] }), { prompts: [] });
  assert.equal(f.blocks(call("prompts/get", { name: "a" })), true);
  assert.equal(f.blocks(call("completion/complete", { ref: { type: "ref/prompt", name: "a" }, argument: {} })), true);
});

test("pattern form: globs, deny wins, omitted allow allows the rest", () => {
  const f = compile({ tools: { allow: ["get_*", "list_*"], deny: ["*_secret"] }, prompts: { deny: ["internal-*"] } });
  assert.equal(f.blocks(call("tools/call", { name: "get_user" })), false);
  assert.equal(f.blocks(call("tools/call", { name: "get_secret" })), true);
  assert.equal(f.blocks(call("tools/call", { name: "delete_user" })), true);
  assert.equal(f.blocks(call("prompts/get", { name: "internal-x" })), true);
  assert.equal(f.blocks(call("prompts/get", { name: "public" })), false);
});

test("resources: by uri, readable through allow-listed templates; pattern form covers templates", () => {
  const f = compile({ resources: ["file:///readme.md"], resourceTemplates: ["file:///docs/{name}", "db://{+path}"] });
  assert.equal(f.blocks(call("resources/read", { uri: "file:///readme.md" })), false);
  assert.equal(f.blocks(call("resources/read", { uri: "file:///docs/intro.md" })), false);
  assert.equal(f.blocks(call("resources/read", { uri: "file:///docs/a/b.md" })), true, "{name} does not span /");
  assert.equal(f.blocks(call("resources/read", { uri: "db://x/y/z" })), false);
  assert.equal(f.blocks(call("resources/read", { uri: "file:///etc/passwd" })), true);
  assert.equal(f.blocks(call("resources/subscribe", { uri: "file:///etc/passwd" })), true);
  assert.deepEqual(
    f.rewriteList("resourceTemplates", { resourceTemplates: [{ uriTemplate: "file:///docs/{name}" }, { uriTemplate: "secret://{id}" }] }),
    { resourceTemplates: [{ uriTemplate: "file:///docs/{name}" }] },
  );

  const p = compile({ resources: { allow: ["file:///public/*"] } });
  assert.equal(p.blocks(call("resources/read", { uri: "file:///public/a/b" })), false);
  assert.equal(p.blocks(call("resources/read", { uri: "file:///private/a" })), true);
  assert.deepEqual(
    p.rewriteList("resourceTemplates", { resourceTemplates: [{ uriTemplate: "file:///public/{x}" }, { uriTemplate: "file:///private/{x}" }] }),
    { resourceTemplates: [{ uriTemplate: "file:///public/{x}" }] },
  );
  assert.equal(p.blocks(call("completion/complete", { ref: { type: "ref/resource", uri: "file:///private/{x}" } })), true);
});

test("uri templates", () => {
  assert.ok(uriTemplateRegex("https://x/{a}/v{?q,r}").test("https://x/b/v?q=1&r=2"));
  assert.ok(uriTemplateRegex("https://x/{a}/v{?q,r}").test("https://x/b/v"));
  assert.ok(!uriTemplateRegex("https://x/{a}").test("https://x/b/c"));
  assert.ok(uriTemplateRegex("x{/path*}").test("x/a/b"));
  assert.ok(!uriTemplateRegex("a.b/{x}").test("aXb/1"), "literal dots are escaped");
});

test("options: both forms validate; unknown keys and bad shapes are errors", () => {
  const s = capabilityFilterOptionsSchema;
  assert.equal(s.safeParse({ tools: [], prompts: [], resources: [], resourceTemplates: [] }).success, true);
  assert.equal(s.safeParse({ tools: { allow: ["a*"], deny: [] } }).success, true);
  assert.equal(s.safeParse({ tool: [] }).success, false);
  assert.equal(s.safeParse({ tools: { allow: "a" } }).success, false);
  assert.equal(s.safeParse({ tools: [{ description: "no name" }] }).success, false);
  assert.equal(s.safeParse({ resources: [{ name: "needs uri" }] }).success, false);
});
