// `capgate eval` as a real process: one decision from flags, printed for people and as JSON.
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureExampleGuests, type ExampleGuests } from '../simulator/support/guests.ts';
import { runCli } from './support/run-cli.ts';

let guests: ExampleGuests;
beforeAll(async () => {
  guests = await ensureExampleGuests();
});

interface EvalJson {
  decision: string;
  reason: string;
  errorKind?: string;
  errorDetail?: string;
  calls: Array<{ op: string; pid: number; bytes?: string; result: string }>;
  logs: Array<{ level: string; message: string }>;
  fuelUsed: number;
  fuelLimit: number;
  request: { requesterPid: number; targetPid: number; bytes: string };
}

describe('capgate eval', () => {
  it('prints decision, reason, calls, logs and fuel; exit 1 on deny', async () => {
    const r = await runCli(['eval', guests.memlockCap, '--bytes', '8Gi', '--label', 'memory-bytes=4294967296']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^decision {2}deny$/m);
    expect(r.stdout).toMatch(/^reason {4}over-cap$/m);
    expect(r.stdout).toMatch(/^calls {5}query-vm-identity\(pid=1001\) -> some$/m);
    expect(r.stdout).toMatch(/^logs {6}warn: request exceeds memory-bytes plus overhead$/m);
    expect(r.stdout).toMatch(/^fuel {6}\d+ of 10000000$/m);
    expect(r.stdout).toMatch(/^request {3}pid 1000 \(uid 0\) in VM vm asks 8Gi for pid 1001, in the requester's VM/m);
  });

  it('allows with exit 0 and gives the same as JSON, sizes in binary form', async () => {
    const r = await runCli(['eval', guests.memlockCap, '--bytes', '1Gi', '--label', 'memory-bytes=4294967296', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as EvalJson;
    expect(j).toMatchObject({ decision: 'allow', reason: '', fuelLimit: 10_000_000, request: { requesterPid: 1000, targetPid: 1001, bytes: '1Gi' } });
    expect(j.calls).toEqual([
      { op: 'query-vm-identity', pid: 1001, result: 'some' },
      { op: 'set-memlock', pid: 1001, bytes: '1Gi', result: 'ok' },
    ]);
    expect(j.logs).toEqual([{ level: 'info', message: 'memlock raised' }]);
    expect(j.fuelUsed).toBeGreaterThan(0);
  });

  it('places the target where --target says, and models the kernel and the daemon', async () => {
    const vfio = ['eval', guests.vfioOnly, '--bytes', '1Gi', '--label', 'vfio=true', '--json'];
    const other = JSON.parse((await runCli([...vfio, '--target', 'other-vm'])).stdout) as EvalJson;
    expect([other.reason, other.calls]).toEqual(['target-not-in-requester-vm', [{ op: 'query-vm-identity', pid: 2001, result: 'none' }]]);
    const refused = JSON.parse((await runCli([...vfio, '--memlock', '64Ki', '--no-cap-sys-resource'])).stdout) as EvalJson;
    expect(refused.reason).toBe('set-memlock-failed: not-permitted');
    const unbound = JSON.parse((await runCli([...vfio, '--no-bound'])).stdout) as EvalJson;
    expect(unbound).toMatchObject({ decision: 'deny', reason: 'no-policy', errorKind: 'no-policy', fuelUsed: 0, calls: [] });
  });

  it('refuses bad flags with exit 2', async () => {
    const r = await runCli(['eval', guests.memlockCap, '--bytes', '4GB']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"4GB" is ambiguous/);
    const m = await runCli(['eval', guests.memlockCap, '--bytes', '1Gi', '--memlock', '8Mi:64Ki']);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/soft limit 8Mi is above the hard limit 64Ki/);
    const t = await runCli(['eval', guests.memlockCap, '--bytes', '1Gi', '--target', 'mars']);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/Allowed choices are vm, requester, other-vm, host, absent/);
  });
});
