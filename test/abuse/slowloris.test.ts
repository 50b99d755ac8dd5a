/**
 * Slow-body slowloris with the finding's numbers: 1,000 connections that trickle body bytes
 * (one byte per second each) against a gateway limited to 1,024 open descriptors. Before, the
 * server ran with `requestTimeout: 0`: the connections stayed open indefinitely and every new
 * client got a connection reset until the attacker stopped. Now the connection cap
 * (`TOLLGATE_MAX_CONNECTIONS`, by default half the descriptor limit: 512 here) turns the excess
 * away at once, the whole-request timeout cuts the rest with 408, the process never runs out of
 * descriptors, and it serves normal clients again without the attacker stopping. The request
 * timeout is 10 s here instead of the default 60 s to keep the test short. Runs with
 * `npm run test:abuse`.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rawConnect, type RawConnection } from "../helpers/raw-socket.js";
import { sampleMax, startGatewayProcess, type GatewayProcess } from "./gateway-process.js";

const ATTACKERS = 1_000;
const FD_LIMIT = 1_024;

let gw: GatewayProcess;
before(async () => {
  gw = await startGatewayProcess({ TOLLGATE_REQUEST_TIMEOUT_MS: "10000", TOLLGATE_MAX_CONNECTIONS: String(FD_LIMIT / 2) });
  execFileSync("prlimit", [`--pid=${gw.pid}`, `--nofile=${FD_LIMIT}:${FD_LIMIT}`]);
});
after(async () => gw?.close());

test(`${ATTACKERS} trickling connections under a ${FD_LIMIT}-descriptor limit are all closed; normal clients are served`, async () => {
  const fds = sampleMax(() => gw.openFds());
  const conns: RawConnection[] = [];
  const head = `POST /mcp/open HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n`;
  for (let i = 0; i < ATTACKERS; i++) {
    const c = await rawConnect(gw.port).catch(() => undefined);
    if (!c) continue;
    conns.push(c);
    void c.write(head);
  }
  // One byte per second on every connection that is still open: never idle for 10 s.
  const trickle = setInterval(() => {
    for (const c of conns) if (!c.socket.destroyed && c.socket.writable) c.socket.write(" ");
  }, 1_000);
  try {
    const outcomes = await Promise.all(conns.map((c) => c.answer.then((a) => a.status, () => 0)));
    await Promise.all(conns.map((c) => (c.socket.destroy(), c.closed)));
    const timedOut = outcomes.filter((s) => s === 408).length;
    const turnedAway = outcomes.filter((s) => s === 0).length;
    const maxFds = fds.stop();
    console.log(`${ATTACKERS} attackers: ${timedOut} cut with 408, ${turnedAway} closed without an answer; gateway descriptors at most ${maxFds} of ${FD_LIMIT}`);
    assert.equal(timedOut + turnedAway, conns.length, "every attacking connection was closed by the gateway");
    assert.ok(timedOut > 0 && timedOut <= FD_LIMIT / 2, `${timedOut} were admitted and cut`);
    assert.ok(maxFds < FD_LIMIT, "the process never ran out of descriptors");
    // The attacker is still "running" (its loop keeps writing); a normal client is served.
    const res = await fetch(`http://127.0.0.1:${gw.port}/healthz`);
    assert.equal(res.status, 200);
  } finally {
    clearInterval(trickle);
  }
});
