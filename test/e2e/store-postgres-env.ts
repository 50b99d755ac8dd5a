/**
 * Finds the test PostgreSQL (127.0.0.1:5432, trust auth, database `test`) for tests that need it.
 * `TOLLGATE_TEST_POSTGRES_URL` overrides the address. Tests skip when it is unreachable, except
 * under `CI=true`, where they must fail instead.
 */
import os from "node:os";
import pg from "pg";

export interface PostgresAvailability {
  /** A working connection URL (without schema), or undefined. */
  url: string | undefined;
  /** Why it is unavailable (for the skip/fail message). */
  reason: string;
  /** True when the caller must fail rather than skip. */
  required: boolean;
}

let cached: Promise<PostgresAvailability> | undefined;

/** Probes the candidates once per process. */
export function findTestPostgres(): Promise<PostgresAvailability> {
  cached ??= probe();
  return cached;
}

async function probe(): Promise<PostgresAvailability> {
  const required = process.env.CI === "true";
  const override = process.env.TOLLGATE_TEST_POSTGRES_URL;
  const candidates = override
    ? [override]
    : [...new Set(["postgres", os.userInfo().username])].map((u) => `postgres://${encodeURIComponent(u)}@127.0.0.1:5432/test`);
  const errors: string[] = [];
  for (const url of candidates) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
    try {
      await client.connect();
      await client.query("SELECT 1");
      return { url, reason: "", required };
    } catch (err) {
      errors.push(`${url.replace(/\/\/[^@]*@/, "//")}: ${(err as Error).message}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return { url: undefined, reason: `PostgreSQL not reachable (${errors.join("; ")})`, required };
}

/** A unique schema name for one test's isolation. */
export function uniqueSchema(tag: string): string {
  return `tollgate_test_${tag}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

/** Drops a schema created by a test. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema.replace(/"/g, '""')}" CASCADE`);
  } finally {
    await client.end();
  }
}
