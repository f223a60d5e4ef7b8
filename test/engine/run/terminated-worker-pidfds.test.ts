// A worker terminated at the deadline runs no finally blocks: the pidfds its evaluation held
// must still be closed (os/pidfd-ledger.ts), or a policy that times out on
// purpose would leak the daemon's file descriptors one request at a time.
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Engine } from '../../../runtime/engine/engine.ts';
import { readStartTime } from '../../../runtime/os/proc-stat.ts';
import { CHARGE, compiledFromWat, policyWat } from './fixtures/wat.ts';
import { request } from './fixtures/worlds.ts';
import { spawnChild } from '../../support/processes/children.ts';
import { waitUntil } from '../../support/wait.ts';

let child: ChildProcess;
let engine: Engine;

function openPidfds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[pidfd]') n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}

beforeAll(() => {
  child = spawnChild('sleep', ['300'], { stdio: 'ignore' });
});
afterAll(async () => {
  child.kill('SIGKILL');
  await engine?.close();
});

it.each([
  ['kept for the evaluation', undefined],
  ['kept across evaluations (recent members)', 60_000],
])('closes the pidfds a worker held when it was terminated mid-evaluation: %s', async (_name, recentMembersMs) => {
  const pid = child.pid!;
  const scope = {
    identity: { uuid: 'leak-vm', name: 'leak', id: 1, labels: [] },
    anchor: { rootPid: pid, rootStartTime: readStartTime(pid)! },
  };
  // query-vm-identity keeps the target's pidfd for the rest of the evaluation, which never ends.
  const policy = compiledFromWat(
    policyWat(
      `(func (export "evaluate") (param i32 i32 i32) (param $tpid i32) (param i64) (result i32) ${CHARGE}
      (call $query (local.get $tpid) (i32.const 1024)) (loop $l ${CHARGE} (br $l)) (call $allow))`,
      { fuel: 1e15 },
    ),
    { deadlineMs: 300, fuel: 1e15 },
  );
  await engine?.close();
  engine = new Engine({ workers: 1, linuxCapabilities: true, inlineFuel: 0, limits: policy.limits });
  engine.load(policy);
  await engine.ready();
  const before = openPidfds();
  for (let i = 0; i < 3; i++) {
    const spec = { kind: 'linux' as const, scope, ...(recentMembersMs !== undefined ? { recentMembersMs } : {}) };
    const o = await engine.evaluate(policy.sha256, request({ requesterPid: pid, targetPid: pid }), spec);
    expect(o).toMatchObject({ decision: 'deny', errorKind: 'timeout' });
    await engine.ready(); // the replacement worker is up: the terminated one has exited
  }
  expect(engine.workerRespawns).toBe(3);
  // The old threads' exit handlers run on this thread's event loop, after their exit.
  await waitUntil(
    () => openPidfds() <= before,
    () => `the terminated workers' pidfds to close (${openPidfds() - before} still open)`,
  );
  expect(openPidfds()).toBe(before);
});
