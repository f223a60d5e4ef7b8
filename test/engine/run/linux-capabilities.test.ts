// The engine with the real Linux capabilities, created inside the worker from a 'linux'
// CapabilitySpec: real child process, real /proc membership, real prlimit.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CapabilitySpec } from '../../../runtime/capabilities/spec.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { compiledFromWat, fullPolicyWat } from './fixtures/wat.ts';
import { request } from './fixtures/worlds.ts';
import { memlockOf, spawnVmRoot } from '../../support/vm-root.ts';

let engine: Engine;
let child: ChildProcess;
let pid: number;
let spec: CapabilitySpec;
let sha: string;

beforeAll(async () => {
  ({ child, pid, spec } = spawnVmRoot({ uuid: 'real-vm', name: 'real', id: 1, labels: [['k', 'v']] }));
  engine = new Engine({ workers: 1, linuxCapabilities: true, limits: { deadlineMs: 5_000 } });
  const p = compiledFromWat(fullPolicyWat(), { deadlineMs: 5_000 });
  engine.load(p);
  sha = p.sha256;
});

afterAll(async () => {
  child.kill('SIGKILL');
  await engine.close();
});

describe('engine + Linux capabilities in the worker', () => {
  it('lowers the real memlock limit of a process inside the VM', async () => {
    const before = memlockOf(pid);
    const target = (before.hard < 4n << 20n ? before.hard : 4n << 20n) - 4096n;
    const o = await engine.evaluate(sha, request({ requesterPid: pid, targetPid: pid, bytes: target }), spec);
    expect(o.errorDetail).toBeUndefined();
    expect(o.decision).toBe('allow');
    expect(o.capabilityCalls).toEqual([
      { op: 'query-vm-identity', pid, result: 'some', vmUuid: 'real-vm' },
      { op: 'set-memlock', pid, bytes: target, result: 'ok', effect: { before, startTime: expect.any(Number) } },
    ]);
    expect(memlockOf(pid)).toEqual({ soft: target, hard: target });
  });

  it('refuses a pid outside the VM (out of scope, never touched)', async () => {
    const mine = memlockOf(process.pid);
    const o = await engine.evaluate(sha, request({ requesterPid: pid, targetPid: process.pid, bytes: 4096n }), spec);
    expect(o).toMatchObject({ decision: 'deny', reason: 'target-not-in-requester-vm' });
    expect(memlockOf(process.pid)).toEqual(mine);
  });

  it('raising the hard limit without CAP_SYS_RESOURCE is not-permitted', async () => {
    const { hard } = memlockOf(pid);
    const o = await engine.evaluate(
      sha,
      request({ requesterPid: pid, targetPid: pid, bytes: hard + (1n << 20n) }),
      spec,
    );
    expect(o).toMatchObject({ decision: 'deny', reason: 'not-permitted' });
    expect(memlockOf(pid).hard).toBe(hard);
  });
});
