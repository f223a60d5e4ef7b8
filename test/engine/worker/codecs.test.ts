// The worker mailboxes' codecs: what goes in comes out exactly (structured-clone equal, optional
// fields absent rather than undefined), and whatever the schema cannot carry exactly is refused
// with MailboxOverflow so that it takes the MessagePort instead.
import { describe, expect, it } from 'vitest';
import { MEMLOCK_UNLIMITED } from '../../../runtime/contract/types.ts';
import type { Outcome } from '../../../runtime/engine/outcome.ts';
import { ByteReader, ByteWriter, MailboxOverflow } from '../../../runtime/engine/worker/byte-codec.ts';
import { readJob, serializeSpec, writeJob } from '../../../runtime/engine/worker/job-codec.ts';
import { readOutcome, writeOutcome } from '../../../runtime/engine/worker/outcome-codec.ts';
import { SpecCache } from '../../../runtime/engine/worker/spec-cache.ts';
import { request, simulated } from '../run/fixtures/worlds.ts';

function roundTrip(o: Outcome, size = 65536): Outcome {
  const box = new Uint8Array(new SharedArrayBuffer(size));
  const w = new ByteWriter(box);
  writeOutcome(w, o);
  return readOutcome(new ByteReader(box.subarray(0, w.pos)));
}

const OUTCOMES: Record<string, Outcome> = {
  allow: { decision: 'allow', reason: '', fuelUsed: 24990, durationUs: 57, capabilityCalls: [], logs: [] },
  'deny with every field': {
    decision: 'deny',
    reason: 'invalid-abi',
    errorKind: 'invalid-abi',
    errorDetail: 'deny reason: string at 70000 (12 bytes) is outside guest memory — ünïcode 🦀',
    fuelUsed: 10_000_000,
    durationUs: 1234.5,
    capabilityCalls: [
      { op: 'query-vm-identity', pid: 4001, result: 'some', vmUuid: '6f1c2a4e-0000-4000-8000-000000000001' },
      { op: 'query-vm-identity', pid: 5001, result: 'none' },
      { op: 'set-memlock', pid: 4294967295, bytes: MEMLOCK_UNLIMITED, result: 'ok' },
      {
        op: 'set-memlock',
        pid: 1,
        bytes: 0n,
        result: 'not-permitted',
        detail: 'EPERM: raising the hard limit needs CAP_SYS_RESOURCE',
      },
      { op: 'set-memlock', pid: 2, bytes: 5n, result: 'quota-exceeded' },
      {
        op: 'set-memlock',
        pid: 3,
        bytes: 4096n,
        result: 'ok',
        effect: { before: { soft: 65536n, hard: MEMLOCK_UNLIMITED }, startTime: 123456789 },
        undo: 'undo failed: EPERM',
      },
      {
        op: 'set-memlock',
        pid: 4,
        bytes: 8n,
        result: 'internal',
        detail: 'stopped',
        effect: { before: { soft: 0n, hard: 1n }, startTime: 0 },
        unfinished: true,
      },
    ],
    logs: [
      { level: 'debug', message: '' },
      { level: 'info', message: 'vm-ünïcode-α' },
      { level: 'warn', message: 'x'.repeat(4096) },
      { level: 'error', message: '名前' },
    ],
    droppedLogLines: 3,
    droppedMemoryBytes: 22 * 65536,
  },
  'policy deny': { decision: 'deny', reason: 'over-cap', fuelUsed: 0, durationUs: 0, capabilityCalls: [], logs: [] },
};

describe('outcome codec', () => {
  for (const [name, o] of Object.entries(OUTCOMES)) {
    it(`round-trips exactly: ${name}`, () => {
      expect(roundTrip(o)).toStrictEqual(structuredClone(o));
    });
  }

  it('refuses what it cannot carry exactly: the port takes it', () => {
    const base = OUTCOMES['allow']!;
    expect(() => roundTrip({ ...base, reason: 'lone \ud800 surrogate' })).toThrow(MailboxOverflow);
    expect(() => roundTrip({ ...base, errorKind: 'not-a-kind' as never })).toThrow(MailboxOverflow);
    expect(() => roundTrip({ ...base, fuelUsed: 5n as never })).toThrow(MailboxOverflow);
    expect(() => roundTrip({ ...base, logs: [{ level: 'info', message: 'x'.repeat(5000) }] }, 4096)).toThrow(
      MailboxOverflow,
    );
  });
});

describe('job codec', () => {
  it('round-trips the request, the policy id and the spec bytes', () => {
    const box = new Uint8Array(new SharedArrayBuffer(4096));
    const req = request({ requesterPid: 4294967295, bytes: MEMLOCK_UNLIMITED });
    const spec = serializeSpec(simulated());
    writeJob(new ByteWriter(box), 77, 'ab'.repeat(32), req, spec);
    const job = readJob(new ByteReader(box));
    expect(job).toStrictEqual({ id: 77, sha256: 'ab'.repeat(32), request: req, spec: new Uint8Array(spec) });
    const context = JSON.stringify({
      decisionId: '0190f0a0-0000-7000-8000-000000000000',
      vm: { name: 'vm-ünïcode-α' },
    });
    writeJob(new ByteWriter(box), 78, 'ab'.repeat(32), req, spec, context);
    expect(readJob(new ByteReader(box))).toStrictEqual({
      id: 78,
      sha256: 'ab'.repeat(32),
      request: req,
      spec: new Uint8Array(spec),
      context,
    });
  });

  it('refuses requests outside the declared types (they keep their old path and behaviour)', () => {
    const box = new Uint8Array(new SharedArrayBuffer(4096));
    const spec = serializeSpec(simulated());
    expect(() => writeJob(new ByteWriter(box), 1, 'x', request({ bytes: -1n }), spec)).toThrow(MailboxOverflow);
    expect(() => writeJob(new ByteWriter(box), 1, 'x', request({ targetPid: '4001' as never }), spec)).toThrow(
      MailboxOverflow,
    );
    expect(() => writeJob(new ByteWriter(new Uint8Array(64)), 1, 'x', request(), spec)).toThrow(MailboxOverflow);
  });
});

describe('SpecCache', () => {
  it('reuses the previous spec only for identical bytes, and the reused copy is deeply frozen', () => {
    const cache = new SpecCache();
    const a = cache.get(new Uint8Array(serializeSpec(simulated())));
    const again = cache.get(new Uint8Array(serializeSpec(simulated())));
    expect(again).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    if (a.kind !== 'simulated') throw new Error('unexpected spec kind');
    expect(Object.isFrozen(a.world.vms[0]!.identity.labels[0])).toBe(true);
    expect(() => {
      (a.world.vms[0]!.pids as number[]).push(1);
    }).toThrow(TypeError);
    const b = cache.get(new Uint8Array(serializeSpec(simulated({ requesterPid: 5001 }))));
    expect(b).not.toBe(a);
    expect(b).toStrictEqual(simulated({ requesterPid: 5001 }));
  });

  it('does not cache a spec holding containers it cannot freeze', () => {
    const cache = new SpecCache();
    const bytes = new Uint8Array(serializeSpec({ kind: 'simulated', extra: new Map([[1, 2]]) }));
    expect(cache.get(bytes)).not.toBe(cache.get(bytes));
  });
});
