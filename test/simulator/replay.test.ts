// Replay: audit records -> rebuilt worlds -> the new policy's decisions, old vs new.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulator } from '../../runtime/simulator/simulator.ts';
import { replayAudit } from '../../runtime/simulator/replay/replay.ts';
import { readAuditRecords } from '../../runtime/simulator/replay/read-audit.ts';
import { replayInputFrom } from '../../runtime/simulator/replay/world-from-record.ts';
import { formatReplayResult } from '../../runtime/simulator/replay/report.ts';
import type { AuditRecord } from '../../runtime/wire/index.ts';
import { auditRecord, GPU_VM, vfioOnlyHistory } from './support/audit-records.ts';
import { ensureExampleGuests } from './support/guests.ts';

let simulator: Simulator;
let memlockCap: string;
let vfioOnly: string;

beforeAll(async () => {
  const guests = await ensureExampleGuests();
  simulator = new Simulator();
  for (const [file, set] of [
    [guests.memlockCap, (s: string) => (memlockCap = s)],
    [guests.vfioOnly, (s: string) => (vfioOnly = s)],
  ] as const) {
    const r = await simulator.compile(new Uint8Array(readFileSync(file)));
    if (!r.ok) throw new Error(r.message);
    set(r.policy.sha256);
  }
});
afterAll(async () => {
  await simulator?.close();
});

describe('world rebuilt from an audit record', () => {
  it('puts the requester and a granted target in the recorded VM', () => {
    const input = replayInputFrom(auditRecord({ vm: GPU_VM, targetPid: 51, bytes: '1073741824', granted: true }))!;
    expect(input.world.requesterPid).toBe(50);
    expect(input.world.vms).toEqual([{ identity: GPU_VM, pids: [50, 51] }]);
    expect(input.world.canRaiseHardLimit).toBe(true);
    expect(input.request).toEqual({
      operation: 'set-memlock',
      requesterPid: 50,
      requesterUid: 107,
      targetPid: 51,
      bytes: 1n << 30n,
    });
  });

  it('keeps a target the policy was told is outside the VM outside', () => {
    const r = auditRecord({ vm: GPU_VM, targetPid: 900, bytes: '1', outside: true });
    const input = replayInputFrom(r)!;
    expect(input.world.vms[0]!.pids).toEqual([50]);
    expect(input.world.processes.map((p) => p.pid)).toContain(900);
  });

  it('sets the hard limit below a refused raise and drops CAP_SYS_RESOURCE', () => {
    const input = replayInputFrom(auditRecord({ vm: GPU_VM, targetPid: 51, bytes: '1073741824', refused: true }))!;
    expect(input.world.canRaiseHardLimit).toBe(false);
    expect(input.world.processes.find((p) => p.pid === 51)!.memlock.hard).toBeLessThan(1n << 30n);
  });

  it('skips records where no policy ran', () => {
    expect(
      replayInputFrom({ ...auditRecord({ vm: GPU_VM, targetPid: 51, bytes: '1' }), vm: null, policy: null }),
    ).toBeNull();
  });

  it("skips a decision lost with its effects (audited at a restart): the policy's decision was never recorded", () => {
    const lost = auditRecord({
      vm: GPU_VM,
      targetPid: 51,
      bytes: '1073741824',
      granted: true,
      decision: 'deny',
      reason: 'decision-lost',
    });
    expect(replayInputFrom({ ...lost, errorKind: 'decision-lost' })).toBeNull();
  });
});

describe('replayAudit', () => {
  it('reports no change when the same policy replays its own decisions', async () => {
    const records = vfioOnlyHistory();
    const result = await replayAudit(simulator, vfioOnly, records);
    expect(result.replayed.map((r) => [r.change, r.outcome.decision, r.outcome.reason])).toEqual([
      ['none', 'allow', ''],
      ['none', 'deny', 'vm-not-vfio'],
      ['none', 'deny', 'target-not-in-requester-vm'],
    ]);
    expect(formatReplayResult(result)).toBe('3 unchanged, 0 changed');
  });

  it('lists every decision a new policy would change, old vs new', async () => {
    const records = [
      ...vfioOnlyHistory(),
      {
        ...auditRecord({ decisionId: 'd-unknown', vm: GPU_VM, targetPid: 1, bytes: '1' }),
        vm: null,
        policy: null,
        reason: 'unknown-requester',
      },
    ];
    const result = await replayAudit(simulator, memlockCap, records);
    expect(result.changed).toBe(2);
    expect(result.unchanged).toBe(1);
    expect(result.skipped.map((r) => r.decisionId)).toEqual(['d-unknown']);
    const changes = result.replayed.filter((r) => r.change !== 'none');
    expect(changes.map((r) => [r.record.decisionId, r.change, r.outcome.decision, r.outcome.reason])).toEqual([
      ['d-unlimited', 'decision', 'deny', 'over-cap'],
      ['d-plain', 'decision', 'allow', ''],
    ]);
    const text = formatReplayResult(result);
    expect(text).toMatch(/CHANGED {2}d-unlimited/);
    expect(text).toMatch(/old: allow/);
    expect(text).toMatch(/new: deny\("over-cap"\)/);
    expect(text.split('\n').at(-1)).toBe('1 unchanged, 2 changed, 1 skipped (no policy ran)');
  });
});

describe('reading audit files', () => {
  const rec: AuditRecord = auditRecord({ vm: GPU_VM, targetPid: 51, bytes: '1' });
  it('reads `audit ls --json`, a JSON array, and JSON lines', () => {
    for (const text of [
      JSON.stringify({ records: [rec, rec] }),
      JSON.stringify([rec, rec]),
      `${JSON.stringify(rec)}\n${JSON.stringify(rec)}\n`,
    ]) {
      const r = readAuditRecords(text);
      expect(r.ok && r.records.length).toBe(2);
    }
  });
  it('names the bad record and how to export good ones', () => {
    const r = readAuditRecords(JSON.stringify([rec, { ...rec, bytes: 'lots' }]));
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.message).toMatch(/^audit record 2: bad "bytes" "lots"; export records with `capgate audit ls --json/);
    const notJson = readAuditRecords('hello');
    expect(!notJson.ok && notJson.message).toMatch(/not JSON/);
  });
});
