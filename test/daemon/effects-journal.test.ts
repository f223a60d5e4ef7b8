// The effects journal on its own: intents recorded by several threads (the main thread and the
// evaluation workers each map the daemon's file) are all found by a restart until cleared, a full
// journal refuses (the effect then does not happen), a frame cut short is skipped, and recovery
// turns exactly the intents without a decision record into decision-lost records, undone newest first.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  decisionContextJson,
  intentPayload,
  writeIntentPayload,
  type DecisionContext,
  type SetMemlockIntent,
} from '../../runtime/effects/effect-intent.ts';
import { EffectJournal } from '../../runtime/effects/effect-journal.ts';
import { recoverLostDecisions } from '../../runtime/effects/recover.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';

afterAll(removeTempDirs);

const MiB = 1024n * 1024n;

function context(decisionId: string): DecisionContext {
  return {
    decisionId,
    time: '2026-12-05T10:00:00.000Z',
    requester: { pid: 10, uid: 107, gid: 107 },
    vm: {
      uuid: '6f1c2a4e-0000-4000-8000-000000000001',
      name: 'vm-ünïcode',
      id: 7,
      labels: [['memory-bytes', '1073741824']],
    },
    operation: 'set-memlock',
    targetPid: 11,
    bytes: String(4n * MiB),
    policy: { name: 'p', revision: 3, sha256: 'ab'.repeat(32) },
  };
}

const intent = (pid: number, bytes: bigint, before: bigint): SetMemlockIntent => ({
  op: 'set-memlock',
  pid,
  startTime: 4242,
  bytes,
  before: { soft: before, hard: before },
});

describe('effects journal', () => {
  it('holds what the threads recorded until it is cleared, across a reopen (a kill -9); a reopen then starts empty', () => {
    const file = path.join(tempDir(), 'effects');
    const main = EffectJournal.open(file).journal;
    // A worker maps the daemon's journal through the daemon's fd, and claims slots as its own.
    const worker = EffectJournal.attach(main.shared, 2);
    const a = main.append(JSON.stringify(context('a')), intent(11, 4n * MiB, 8n * MiB));
    const b = worker.append(JSON.stringify(context('b')), intent(12, 2n * MiB, 8n * MiB));
    const c = worker.append(JSON.stringify(context('c')), intent(13, 1n * MiB, 8n * MiB));
    expect(new Set([a, b, c]).size).toBe(3);
    expect(main.claimed).toBe(3);
    main.clear(b); // b's decision is recorded
    expect(main.claimed).toBe(2);
    // What a restart finds: the stores went to the file's pages, no write() needed.
    const { journal: again, intents } = EffectJournal.open(file);
    expect(intents.map((i) => [i.context.decisionId, i.intent.pid, i.intent.bytes])).toEqual([
      ['a', 11, 4n * MiB],
      ['c', 13, 1n * MiB],
    ]);
    expect(intents[0]!.context).toEqual(context('a'));
    expect(EffectJournal.open(file).intents).toEqual([]); // the reopen zeroed it
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    for (const j of [worker, main, again]) j.close();
  });

  it('refuses an intent when every slot is taken, and takes one again once a slot is cleared', () => {
    const { journal } = EffectJournal.open(path.join(tempDir(), 'effects'), 2);
    const first = journal.append(JSON.stringify(context('a')), intent(11, 1n, 2n));
    journal.append(JSON.stringify(context('b')), intent(12, 1n, 2n));
    expect(() => journal.append(JSON.stringify(context('c')), intent(13, 1n, 2n))).toThrow(
      /full \(2 effects waiting for their decisions\)/,
    );
    journal.clear(first);
    expect(journal.append(JSON.stringify(context('c')), intent(13, 1n, 2n))).toBe(first);
    journal.clearAll();
    expect(journal.claimed).toBe(0);
    journal.close();
  });

  it('skips a slot whose frame was cut short (a kill mid-copy): its crc does not match', () => {
    const file = path.join(tempDir(), 'effects');
    const { journal } = EffectJournal.open(file);
    const slot = journal.append(JSON.stringify(context('a')), intent(11, 1n, 2n));
    journal.append(JSON.stringify(context('b')), intent(12, 1n, 2n));
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from('XX'), 0, 2, slot * 1024 + 40); // bytes of the payload changed
    fs.closeSync(fd);
    expect(EffectJournal.open(file).intents.map((i) => i.context.decisionId)).toEqual(['b']);
    journal.close();
  });

  it('refuses to follow a symlink in place of the journal', () => {
    const dir = tempDir();
    fs.symlinkSync('/etc/hostname', path.join(dir, 'effects'));
    expect(() => EffectJournal.open(path.join(dir, 'effects'))).toThrow(/ELOOP/);
  });
});

describe('the decision context an intent carries', () => {
  it('is the JSON it has always been: keys in order, labels left out, targetHostPid only when set', () => {
    expect(decisionContextJson(context('d1'))).toBe(
      `{"decisionId":"d1","time":"2026-12-05T10:00:00.000Z","requester":{"pid":10,"uid":107,"gid":107},"vm":{"uuid":"6f1c2a4e-0000-4000-8000-000000000001","name":"vm-ünïcode","id":7,"labels":[]},"operation":"set-memlock","targetPid":11,"bytes":"4194304","policy":{"name":"p","revision":3,"sha256":"${'ab'.repeat(32)}"}}`,
    );
    const bare = { ...context('d"2'), vm: null, policy: null, targetHostPid: 4242 };
    expect(decisionContextJson(bare)).toBe(
      '{"decisionId":"d\\"2","time":"2026-12-05T10:00:00.000Z","requester":{"pid":10,"uid":107,"gid":107},"vm":null,"operation":"set-memlock","targetPid":11,"targetHostPid":4242,"bytes":"4194304","policy":null}',
    );
  });
});

describe('an intent written straight from its decision context (the main thread: no JSON string first)', () => {
  const contexts: Array<[string, DecisionContext]> = [
    ['the usual one', context('d1')],
    [
      'no VM, no policy, a pid translated from a namespace below',
      { ...context('d2'), vm: null, policy: null, targetHostPid: 4242 },
    ],
    [
      'strings JSON must escape (quote, backslash, control characters, a lone surrogate, non-ASCII)',
      {
        ...context('d"3\\'),
        time: 'x\u0001\n\u2028',
        bytes: '\ud800',
        vm: { uuid: 'u"', name: 'n\\é\t', id: -1, labels: [] },
        policy: { name: 'p\u007f"', revision: 0, sha256: '' },
      },
    ],
  ];
  it.each(contexts)('is byte for byte the payload made from its JSON: %s', (_name, c) => {
    const i = intent(11, 4n * MiB, 0xffff_ffff_ffff_ffffn);
    const expected = Buffer.from(intentPayload(decisionContextJson(c), i, 1_765_000_000_123), 'utf8');
    const slot = Buffer.alloc(2048, 0xee);
    expect(writeIntentPayload(slot, 16, 2048, c, i, 1_765_000_000_123)).toBe(expected.length);
    expect(slot.subarray(16, 16 + expected.length)).toEqual(expected);
    // The same from the JSON (what a worker writes).
    const fromJson = Buffer.alloc(2048, 0xee);
    expect(writeIntentPayload(fromJson, 16, 2048, decisionContextJson(c), i, 1_765_000_000_123)).toBe(expected.length);
    expect(fromJson.subarray(16, 16 + expected.length)).toEqual(expected);
  });

  it('writes nothing past the end of its slot: one that does not fit is refused', () => {
    const c = context('d4');
    const i = intent(11, 4n * MiB, 8n * MiB);
    const n = Buffer.byteLength(intentPayload(decisionContextJson(c), i, 1), 'utf8');
    const slot = Buffer.alloc(n + 20, 0xee);
    expect(writeIntentPayload(slot, 10, 10 + n - 1, c, i, 1)).toBe(-1);
    expect(slot.subarray(10 + n - 1).every((b) => b === 0xee)).toBe(true);
    expect(writeIntentPayload(slot, 10, 10 + n, c, i, 1)).toBe(n);
    expect(slot.subarray(10 + n).every((b) => b === 0xee)).toBe(true);
  });

  it('leaves nothing of a longer intent in the slot it reuses: a restart reads the newer one, whole', () => {
    const file = path.join(tempDir(), 'effects');
    const { journal } = EffectJournal.open(file);
    const long = { ...context('long'), vm: { ...context('x').vm!, name: 'v'.repeat(300) } };
    const first = journal.append(long, intent(11, 4n * MiB, 8n * MiB));
    journal.clear(first);
    const short = { ...context('short'), vm: null, policy: null };
    expect(journal.append(short, intent(12, 1n * MiB, 2n * MiB))).toBe(first); // the lowest free slot again
    const { journal: again, intents } = EffectJournal.open(file);
    expect(intents).toHaveLength(1);
    expect(intents[0]!.context).toEqual(short);
    expect(intents[0]!.intent).toEqual(intent(12, 1n * MiB, 2n * MiB));
    for (const j of [journal, again]) j.close();
  });
});

describe('recovery of lost decisions', () => {
  it('audits only the decisions without a record, lists each effect with the limit at the restart, and undoes them newest first', () => {
    const recorded = {
      context: context('kept'),
      intent: intent(20, 4n * MiB, 8n * MiB),
      at: '2026-12-05T10:00:01.000Z',
    };
    const lostA = { context: context('lost'), intent: intent(21, 4n * MiB, 8n * MiB), at: '2026-12-05T10:00:02.000Z' };
    const lostB = { context: context('lost'), intent: intent(21, 2n * MiB, 4n * MiB), at: '2026-12-05T10:00:02.100Z' };
    const gone = { context: context('gone'), intent: intent(22, 4n * MiB, 8n * MiB), at: '2026-12-05T10:00:03.000Z' };
    const undoOrder: Array<[number, bigint]> = [];
    const records = recoverLostDecisions([recorded, lostA, lostB, gone], {
      hasRecord: (id) => id === 'kept',
      limitNow: (pid) => (pid === 21 ? { soft: 2n * MiB, hard: 2n * MiB } : null),
      undoOne: (u) => {
        undoOrder.push([u.pid, u.expected.hard]);
        return u.pid === 22 ? 'not undone: the process exited (ESRCH)' : 'undo failed: EPERM';
      },
    });
    expect(records.map((r) => r.decisionId)).toEqual(['lost', 'gone']);
    expect(records[0]).toMatchObject({
      decision: 'deny',
      reason: 'decision-lost',
      errorKind: 'decision-lost',
      requester: { pid: 10, uid: 107, gid: 107 },
      policy: { name: 'p', revision: 3 },
    });
    expect(records[0]!.capabilityCalls).toEqual([
      // Its limit is not what it set: whether it acted is not known (the later call overwrote it).
      {
        op: 'set-memlock',
        pid: 21,
        bytes: String(4n * MiB),
        result: 'internal',
        detail: expect.stringMatching(/may not have acted/),
        before: { soft: String(8n * MiB), hard: String(8n * MiB) },
        undo: 'undo failed: EPERM',
        limitAtRecovery: { soft: String(2n * MiB), hard: String(2n * MiB) },
      },
      {
        op: 'set-memlock',
        pid: 21,
        bytes: String(2n * MiB),
        result: 'ok',
        before: { soft: String(4n * MiB), hard: String(4n * MiB) },
        undo: 'undo failed: EPERM',
        limitAtRecovery: { soft: String(2n * MiB), hard: String(2n * MiB) },
      },
    ]);
    expect(records[1]!.capabilityCalls).toMatchObject([
      { pid: 22, limitAtRecovery: null, undo: 'not undone: the process exited (ESRCH)' },
    ]);
    // Newest first; after a failed undo the older call expects what the newer one left.
    expect(undoOrder).toEqual([
      [21, 2n * MiB],
      [21, 2n * MiB],
      [22, 4n * MiB],
    ]);
  });

  it("keeps the daemon's pid of a target named from a pid namespace below: the lost decision is audited with both pids", () => {
    const file = path.join(tempDir(), 'effects');
    const { journal } = EffectJournal.open(file);
    const translated: DecisionContext = { ...context('ns'), targetPid: 5, targetHostPid: 30 };
    journal.append(decisionContextJson(translated), intent(30, 4n * MiB, 8n * MiB));
    const { journal: again, intents } = EffectJournal.open(file);
    expect(intents.map((i) => [i.context.targetPid, i.context.targetHostPid, i.intent.pid])).toEqual([[5, 30, 30]]);
    const records = recoverLostDecisions(intents, {
      hasRecord: () => false,
      limitNow: () => null,
      undoOne: () => 'not undone: the process exited (ESRCH)',
    });
    expect(records[0]).toMatchObject({ decisionId: 'ns', targetPid: 5, targetHostPid: 30 });
    expect(records[0]!.capabilityCalls).toMatchObject([{ pid: 30 }]);
    // A context from a requester in the daemon's namespace has no such field.
    journal.append(decisionContextJson(context('same')), intent(11, 1n, 2n));
    const plain = EffectJournal.open(file).intents;
    expect(plain[0]!.context).not.toHaveProperty('targetHostPid');
    for (const j of [journal, again]) j.close();
  });
});
