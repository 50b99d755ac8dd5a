import assert from "node:assert/strict";
import { test } from "node:test";
import { StoreUnavailableError, errorToResponse } from "../errors.js";
import { pgFailure, sqliteFailure } from "./outage.js";

const pgError = (code: string) => Object.assign(new Error(`pg ${code}`), { code, severity: "ERROR" });

test("PostgreSQL: connection failures, timeouts and server unavailability are outages; statement errors are not", () => {
  for (const err of [
    Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }),
    new Error("timeout exceeded when trying to connect"),
    new Error("Query read timeout"),
    new Error("Connection terminated unexpectedly"),
    pgError("57014"), // statement_timeout
    pgError("57P01"), // admin shutdown
    pgError("08006"),
    pgError("53300"), // too many connections
  ]) {
    assert.ok(pgFailure(err) instanceof StoreUnavailableError, String(err));
  }
  for (const err of [pgError("23505"), pgError("42P01"), new TypeError("bad"), new RangeError("bad")]) {
    assert.equal(pgFailure(err), err, String(err));
  }
});

test("SQLite: lock, file and disk failures are outages; statement errors are not", () => {
  for (const code of ["SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_IOERR_WRITE", "SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CANTOPEN"]) {
    assert.ok(sqliteFailure(Object.assign(new Error(code), { code })) instanceof StoreUnavailableError, code);
  }
  for (const code of ["SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_ERROR", "SQLITE_MISUSE"]) {
    const err = Object.assign(new Error(code), { code });
    assert.equal(sqliteFailure(err), err, code);
  }
});

test("store_unavailable: 503 problem+json with Retry-After; on MCP routes a JSON-RPC error with the request id", async () => {
  const err = new StoreUnavailableError(new Error("connect ECONNREFUSED 10.0.0.5:5432"));
  const http = errorToResponse(err, { mcp: false, requestId: "r1" });
  assert.equal(http.status, 503);
  assert.equal(http.headers.get("retry-after"), "5");
  assert.equal(http.headers.get("content-type"), "application/problem+json");
  const problem = (await http.json()) as Record<string, unknown>;
  assert.equal(problem.code, "store_unavailable");
  assert.ok(!JSON.stringify(problem).includes("10.0.0.5"), "the cause stays in the logs");
  const rpc = errorToResponse(err, { mcp: true, requestId: "r2", rpcId: 42 });
  assert.equal(rpc.status, 503);
  assert.equal(rpc.headers.get("retry-after"), "5");
  const body = (await rpc.json()) as { id: number; error: { code: number; data: { code: string } } };
  assert.deepEqual([body.id, body.error.code, body.error.data.code], [42, -32000, "store_unavailable"]);
});
