/**
 * The first minutes with the `tollgate` command: `--version`, each command's `--help`, a
 * mistyped project folder, and the development-key warning (once per start, naming a command
 * that works from a checkout).
 */
import { execFile } from "node:child_process";
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cleanEnv, exitOf, outputOf, ROOT, runCli, spawnCli, waitForLine } from "../helpers/cli.js";
import { writeProject } from "../helpers/harness.js";
import { main } from "../../src/cli/main.js";

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string };

/** The CLI's `main()` in this process, for output-only checks (the child-process runs cover the rest). */
async function inProcess(args: string[]): Promise<{ code: number | undefined; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, {}, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

test("--version and -v print the package version", async () => {
  const r = await runCli(["--version"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), `tollgate ${pkg.version}`);
  const short = await inProcess(["-v"]);
  assert.equal(short.code, 0);
  assert.equal(short.stdout, `tollgate ${pkg.version}`);
});

test("<command> --help prints that command's usage; help <command> too", async () => {
  const viaBin = await runCli(["validate", "--help"]);
  assert.equal(viaBin.code, 0, viaBin.stderr);
  assert.match(viaBin.stdout, /^Usage: tollgate validate\b/);
  for (const command of ["start", "dev", "validate", "keys", "connections", "audit"]) {
    const r = await inProcess([command, "--help"]);
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: tollgate ${command}\\b`), command);
    assert.doesNotMatch(r.stdout, /^Commands:/m, `${command} --help shows the command, not the overview`);
    assert.equal((await inProcess(["help", command])).stdout, r.stdout);
  }
  assert.match((await inProcess(["keys", "generate", "-h"])).stdout, /^Usage: tollgate keys generate$/m);
  const overview = await inProcess(["--help"]);
  assert.equal(overview.code, 0);
  assert.match(overview.stdout, /^Commands:/m);
  assert.match(overview.stdout, /-v, --version/);
  const unknown = await inProcess(["help", "frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const badOption = await inProcess(["audit", "--limit", "zero"]);
  assert.equal(badOption.code, 2);
  assert.match(badOption.stderr, /invalid --limit "zero"/);
  assert.match(badOption.stderr, /Usage: tollgate audit/, "a bad option prints that command's usage");
});

test("commands that read a project refuse a folder that does not exist, and do not create it", async () => {
  const missing = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-nowhere-")), "my-gateway");
  const message = `error: project folder ${missing} does not exist (give --project DIR, or run the command inside the project folder)`;
  const r = await runCli(["connections", "--project", missing]);
  assert.equal(r.code, 1, r.stdout);
  assert.equal(r.stderr.trim(), message);
  for (const args of [["audit"], ["keys", "rotate"]]) {
    const o = await inProcess([...args, "--project", missing]);
    assert.equal(o.code, 1, `${args.join(" ")}: ${o.stdout}`);
    assert.equal(o.stderr, message);
  }
  assert.equal(fs.existsSync(missing), false, `${missing} was created`);
  fs.rmSync(path.dirname(missing), { recursive: true, force: true });
});

/** Every line of a child's output that warns about the development key. */
const keyWarnings = (child: Parameters<typeof outputOf>[0]) => {
  const { stdout, stderr } = outputOf(child);
  return `${stdout}\n${stderr}`.split("\n").filter((l) => /TOLLGATE_ENCRYPTION_KEY is not set/.test(l));
};

for (const workers of ["1", "2"]) {
  test(`without an encryption key, start --workers ${workers} warns once and names a command that works here`, async () => {
    const dir = await writeProject({});
    const child = spawnCli(["start", "--project", dir, "--port", "0", "--workers", workers]);
    const closed = new Promise((resolve) => child.once("close", resolve));
    try {
      // stdout (start line) and stderr (the warning) are separate pipes: wait for both.
      // Starting two workers on a busy machine can take a while.
      await Promise.all([waitForLine(child, /serving 0 route\(s\) at http:\/\/127\.0\.0\.1:\d+/, 120_000), waitForLine(child, /WARNING: TOLLGATE_ENCRYPTION_KEY/, 120_000)]);
      const warnings = keyWarnings(child);
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0]!, /^WARNING: /);
      assert.match(warnings[0]!, new RegExp(`kept in ${path.join(dir, ".tollgate", "encryption.key").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
      const [, command] = /run `([^`]+)`/.exec(warnings[0]!) ?? [];
      assert.equal(command, "node bin/tollgate.js keys generate");
      child.kill("SIGTERM");
      assert.equal(await exitOf(child), 0, outputOf(child).stderr);
      await closed; // all output read
      assert.equal(keyWarnings(child).length, 1, keyWarnings(child).join("\n"));
    } finally {
      child.kill("SIGKILL");
    }
  });
}

test("the command the warning names works from a checkout, as written", async () => {
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ["bin/tollgate.js", "keys", "generate"], { cwd: ROOT, env: cleanEnv() }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
  assert.equal(Buffer.from(out.trim(), "base64").length, 32);
});
