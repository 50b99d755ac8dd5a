import { test } from "node:test";
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import "./index.js";
import type { Handler } from "../../pipeline/types.js";
import { testGateway } from "../../../test/helpers/test-kit.js";

type Upstream = (messages: unknown) => Response;

const TOOLS = [{ name: "get_issue" }, { name: "delete_issue" }, { name: "list_issues" }];

/** A gateway whose route handler plays the upstream: records what arrived and answers by hand. */
async function setup(options: unknown, upstream: Upstream) {
  const seen: Array<{ body: unknown; upstreamHeaders: Record<string, string> }> = [];
  const handler: Handler = async (request, context) => {
    const text = Buffer.from(await request.rawBytes()).toString("utf8");
    const body = text ? JSON.parse(text) : undefined;
    seen.push({ body, upstreamHeaders: { ...context.upstreamHeaders } });
    return upstream(body);
  };
  const gw = await testGateway(
    [{ name: "filter", exportName: "McpCapabilityFilterInboundPolicy", options }],
    [{ path: "/mcp", inbound: ["filter"], mcp: true, handler, methods: ["GET", "POST"] }],
  );
  const post = (body: unknown) =>
    gw.gateway.fetch(
      new Request("http://gw.test/mcp", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify(body),
      }),
    );
  return { gw, seen, post };
}

const listAnswer = (id: unknown) => ({ jsonrpc: "2.0", id, result: { tools: TOOLS } });

function sseResponse(events: string[], chunkSize = 7): Response {
  const bytes = new TextEncoder().encode(events.join(""));
  return new Response(
    new ReadableStream({
      start(c) {
        for (let i = 0; i < bytes.length; i += chunkSize) c.enqueue(bytes.subarray(i, i + chunkSize));
        c.close();
      },
    }),
    { headers: { "content-type": "text/event-stream" } },
  );
}

function parseSse(text: string): unknown[] {
  return text
    .split("\n\n")
    .filter((e) => e.includes("data:"))
    .map((e) => JSON.parse(e.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n")));
}

test("tools/list JSON answer is filtered; the upstream is asked for an unencoded answer", async () => {
  const { gw, seen, post } = await setup({ tools: ["get_issue", "list_issues"] }, (m) => Response.json(listAnswer((m as { id: unknown }).id)));
  try {
    const res = await post({ jsonrpc: "2.0", id: 7, method: "tools/list" });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { jsonrpc: "2.0", id: 7, result: { tools: [{ name: "get_issue" }, { name: "list_issues" }] } });
    assert.equal(seen[0]!.upstreamHeaders["accept-encoding"], "identity");
  } finally {
    await gw.close();
  }
});

test("tools/list SSE answer: the response event is rewritten, other events pass through", async () => {
  const { gw, post } = await setup({ tools: { deny: ["delete_*"] } }, () =>
    sseResponse([
      ": keep-alive\n\n",
      `event: message\nid: e1\ndata: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: { progress: 1 } })}\n\n`,
      `event: message\nid: e2\ndata: ${JSON.stringify(listAnswer("abc"))}\n\n`,
      `data: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/message", params: { data: "delete_issue" } })}\n\n`,
    ]),
  );
  try {
    const res = await post({ jsonrpc: "2.0", id: "abc", method: "tools/list" });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const text = await res.text();
    assert.ok(text.startsWith(": keep-alive\n\nevent: message\nid: e1\n"));
    assert.ok(text.includes("event: message\nid: e2\ndata: "));
    const events = parseSse(text) as Array<{ id?: unknown; result?: { tools: Array<{ name: string }> } }>;
    assert.equal(events.length, 3);
    assert.deepEqual(events[1]!.result!.tools.map((t) => t.name), ["get_issue", "list_issues"]);
    assert.ok(text.endsWith(`data: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/message", params: { data: "delete_issue" } })}\n\n`));
  } finally {
    await gw.close();
  }
});

test("calls to hidden capabilities answer -32601 with the request id and never reach the upstream", async () => {
  const { gw, seen, post } = await setup(
    { tools: ["get_issue"], prompts: [], resources: ["file:///ok"] },
    () => Response.json({ jsonrpc: "2.0", id: 0, result: {} }),
  );
  try {
    const cases = [
      { jsonrpc: "2.0", id: 11, method: "tools/call", params: { name: "delete_issue", arguments: {} } },
      { jsonrpc: "2.0", id: "p", method: "prompts/get", params: { name: "anything" } },
      { jsonrpc: "2.0", id: 13, method: "resources/read", params: { uri: "file:///secret" } },
    ];
    for (const c of cases) {
      const res = await post(c);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { jsonrpc: "2.0", id: c.id, error: { code: -32601, message: "Method not found" } });
    }
    assert.equal(seen.length, 0);
    const allowed = await post({ jsonrpc: "2.0", id: 14, method: "tools/call", params: { name: "get_issue" } });
    assert.equal(allowed.status, 200);
    assert.equal(seen.length, 1);
  } finally {
    await gw.close();
  }
});

test("batch: refused members answered per message, the rest forwarded; JSON and SSE answers", async () => {
  for (const shape of ["json", "sse"] as const) {
    const { gw, seen, post } = await setup({ tools: ["get_issue"] }, (m) => {
      const answers = (m as Array<{ id?: unknown; method: string }>).filter((x) => x.id !== undefined).map((x) => listAnswer(x.id));
      return shape === "json" ? Response.json(answers) : sseResponse(answers.map((a) => `data: ${JSON.stringify(a)}\n\n`));
    });
    try {
      const res = await post([
        { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "delete_issue" } },
        { jsonrpc: "2.0", id: 2, method: "tools/list" },
        { jsonrpc: "2.0", method: "notifications/initialized" },
      ]);
      assert.deepEqual(seen[0]!.body, [
        { jsonrpc: "2.0", id: 2, method: "tools/list" },
        { jsonrpc: "2.0", method: "notifications/initialized" },
      ]);
      const messages = (shape === "json" ? await res.json() : parseSse(await res.text())) as Array<Record<string, unknown>>;
      const byId = new Map(messages.map((x) => [x.id, x]));
      assert.equal(messages.length, 2, shape);
      assert.deepEqual(byId.get(1), { jsonrpc: "2.0", id: 1, error: { code: -32601, message: "Method not found" } });
      assert.deepEqual(byId.get(2), { jsonrpc: "2.0", id: 2, result: { tools: [{ name: "get_issue" }] } });
    } finally {
      await gw.close();
    }
  }
});

test("batch of only refused calls is answered locally; refused notifications get 202", async () => {
  const { gw, seen, post } = await setup({ tools: [] }, () => new Response(null, { status: 500 }));
  try {
    const res = await post([
      { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "a" } },
      { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "b" } },
    ]);
    assert.deepEqual(((await res.json()) as Array<{ id: number }>).map((m) => m.id), [1, 2]);
    const batchOfOne = await post([{ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "a" } }]);
    assert.ok(Array.isArray(await batchOfOne.json()), "a batch is answered with a batch");
    const note = await post({ jsonrpc: "2.0", method: "tools/call", params: { name: "a" } });
    assert.equal(note.status, 202);
    assert.equal(seen.length, 0);
  } finally {
    await gw.close();
  }
});

test("refused batch member whose remainder is only notifications: 202 becomes a JSON answer", async () => {
  const { gw, post } = await setup({ tools: [] }, () => new Response(null, { status: 202 }));
  try {
    const res = await post([
      { jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "a" } },
      { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 1 } },
    ]);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), [{ jsonrpc: "2.0", id: 9, error: { code: -32601, message: "Method not found" } }]);
  } finally {
    await gw.close();
  }
});

test("compressed answers are decoded and filtered; unknown encodings fail closed", async () => {
  let encoding = "gzip";
  const { gw, post } = await setup({ tools: ["get_issue"] }, (m) => {
    const body = JSON.stringify(listAnswer((m as { id: unknown }).id));
    return new Response(encoding === "gzip" ? gzipSync(body) : body, {
      headers: { "content-type": "application/json", "content-encoding": encoding },
    });
  });
  try {
    const res = await post({ jsonrpc: "2.0", id: 1, method: "tools/list" });
    assert.equal(res.headers.get("content-encoding"), null);
    assert.deepEqual(await res.json(), { jsonrpc: "2.0", id: 1, result: { tools: [{ name: "get_issue" }] } });
    encoding = "zstd-unknown";
    const bad = await post({ jsonrpc: "2.0", id: 2, method: "tools/list" });
    assert.equal(bad.status, 502);
    assert.ok(!(await bad.text()).includes("delete_issue"));
  } finally {
    await gw.close();
  }
});

test("requests with nothing to filter are not touched (no hook, same response object)", async () => {
  const answer = Response.json({ jsonrpc: "2.0", id: 1, result: { content: [] } });
  const { gw, post } = await setup({ tools: ["get_issue"] }, () => answer);
  try {
    const res = await post({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "get_issue" } });
    assert.equal(res, answer);
    const get = await gw.gateway.fetch(new Request("http://gw.test/mcp", { headers: { accept: "text/event-stream" } }));
    assert.equal(get, answer);
  } finally {
    await gw.close();
  }
});
