// Every effect a policy causes is recorded before it happens, listed in the outcome on every
// path, and undone unless the decision is allow. Hostile policies that set-memlock and then deny,
// trap, spin, run past the deadline, kill their worker (test seam), or whose repeated run
// diverges (test seam); the kernel's word, /proc/<pid>/limits, is checked against the outcome.
// Real processes, real prlimit, real workers, a real journal file. This machine lacks
// CAP_SYS_RESOURCE: undoing a lowered hard limit fails with EPERM, which the outcome says.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { libc, RLIMIT_MEMLOCK } from '../../../runtime/os/libc.ts';
import type { CapabilitySpec } from '../../../runtime/capabilities/spec.ts';
import type { CompiledPolicy } from '../../../runtime/engine/api.ts';
import { Engine, type EngineOptions } from '../../../runtime/engine/engine.ts';
import type { CapabilityCall, Outcome } from '../../../runtime/engine/outcome.ts';
import { EffectJournal } from '../../../runtime/effects/effect-journal.ts';
import type { DecisionContext } from '../../../runtime/effects/effect-intent.ts';
import { memlockFromProc } from '../../identity/support/processes.ts';
import { readStartTime } from '../../../runtime/os/proc-stat.ts';
import { spawnVmRoot } from '../../support/vm-root.ts';
import { CHARGE, compiledFromWat, policyWat } from './fixtures/wat.ts';
import { request } from './fixtures/worlds.ts';

const MiB = 1024n * 1024n;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capgate-effects-'));
const children: ChildProcess[] = [];
const engines: Engine[] = [];

afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

afterAll(() => {
  for (const j of journals) j.close();
  for (const c of children) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh "VM": one process, its own root, memlock 8 MiB/8 MiB (this machine's default). */
function vm(): { pid: number; spec: CapabilitySpec } {
  const root = spawnVmRoot((pid) => ({ uuid: `vm-${pid}`, name: 'effects', id: 1, labels: [] }));
  children.push(root.child);
  return root;
}

let seq = 0;
function context(pid: number, bytes: bigint): DecisionContext {
  return {
    decisionId: `0190f0a0-0000-7000-8000-${String(++seq).padStart(12, '0')}`,
    time: new Date().toISOString(),
    requester: { pid, uid: 0, gid: 0 },
    vm: { uuid: `vm-${pid}`, name: 'effects', id: 1, labels: [] },
    operation: 'set-memlock',
    targetPid: pid,
    bytes: String(bytes),
    policy: { name: 'hostile', revision: 1, sha256: 'ab'.repeat(32) },
  };
}

const journals: EffectJournal[] = [];
function journal(): EffectJournal {
  const j = EffectJournal.open(path.join(dir, `effects-${++seq}`)).journal;
  journals.push(j);
  return j;
}

function engine(options: EngineOptions, policy: CompiledPolicy): Engine {
  // A clock that never moves: no test here is about time (main-thread-budget.test.ts is).
  const e = new Engine({ workers: 1, linuxCapabilities: true, limits: policy.limits, clock: () => 0, ...options });
  e.load(policy);
  engines.push(e);
  return e;
}

/** evaluate: query-vm-identity(target) must be some; `before`; set-memlock(target, bytes); `after`. */
function memlockThen(
  after: string,
  opts: { before?: string; fuel?: number; deadlineMs?: number } = {},
): CompiledPolicy {
  const fuel = opts.fuel ?? 1_000_000;
  return compiledFromWat(
    policyWat(
      `(data (i32.const 16384) "denied")
  (func (export "evaluate") (param $op i32) (param $rpid i32) (param $ruid i32) (param $tpid i32) (param $bytes i64) (result i32)
    (local $i i32)
    ${CHARGE}
    ${opts.before ?? ''}
    (call $query (local.get $tpid) (i32.const 1024))
    (if (i32.eqz (i32.load8_u (i32.const 1024))) (then (unreachable)))
    (call $set_memlock (local.get $tpid) (local.get $bytes) (i32.const 1536))
    ${after})`,
      { fuel },
    ),
    { fuel, deadlineMs: opts.deadlineMs ?? 10_000 },
  );
}

const DENY = '(call $deny (i32.const 16384) (i32.const 6))';
const SPIN = `(loop $l ${CHARGE} (br $l)) (call $allow)`;
/** Burns about `n` fuel units (one per iteration). */
const burn = (n: number): string =>
  `(block $done (loop $l ${CHARGE} (br_if $done (i32.ge_u (local.get $i) (i32.const ${n}))) (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l)))`;

const memlockCalls = (calls: CapabilityCall[]): Array<Extract<CapabilityCall, { op: 'set-memlock' }>> =>
  calls.filter((c): c is Extract<CapabilityCall, { op: 'set-memlock' }> => c.op === 'set-memlock');

/** Lowers the soft limit only (allowed without CAP_SYS_RESOURCE): the policy's 8 MiB is then a raise of soft, which can be undone. */
function softOnly(pid: number, soft: bigint): void {
  const r = libc().prlimit(pid, RLIMIT_MEMLOCK, { soft, hard: 8n * MiB });
  if (!r.ok) throw new Error(`prlimit failed: ${r.errno}`);
}

describe('effects follow the decision', () => {
  it('memlock then deny: the effect is undone (a raised soft limit goes back), and the outcome says so', async () => {
    const { pid, spec } = vm();
    softOnly(pid, 1n * MiB);
    const p = memlockThen(DENY);
    const e = engine({}, p);
    const out = await e.evaluate(p.sha256, request({ requesterPid: pid, targetPid: pid, bytes: 8n * MiB }), spec);
    expect(out).toMatchObject({ decision: 'deny', reason: 'denied' });
    expect(memlockCalls(out.capabilityCalls)).toEqual([
      {
        op: 'set-memlock',
        pid,
        bytes: 8n * MiB,
        result: 'ok',
        effect: { before: { soft: 1n * MiB, hard: 8n * MiB }, startTime: readStartTime(pid) },
        undo: 'undone',
      },
    ]);
    expect(memlockFromProc(pid)).toEqual({ soft: 1n * MiB, hard: 8n * MiB });
  });

  it('evaluateHere: an allow decided on this thread is the outcome itself; so is a deny that acted, undone before it returns', async () => {
    const { pid, spec } = vm();
    const req = request({ requesterPid: pid, targetPid: pid, bytes: 8n * MiB });
    const allowing = memlockThen('(call $allow)');
    const e = engine({ inlineFuel: 1_000_000 }, allowing);
    // The first run on this thread loads the Linux capabilities here (a promise, once).
    softOnly(pid, 1n * MiB);
    expect(await e.evaluate(allowing.sha256, req, spec)).toMatchObject({ decision: 'allow' });
    softOnly(pid, 1n * MiB);
    const allowed = e.evaluateHere(allowing.sha256, req, spec);
    expect(allowed).not.toBeInstanceOf(Promise);
    expect(allowed).toMatchObject({ decision: 'allow' });
    expect(memlockFromProc(pid)).toEqual({ soft: 8n * MiB, hard: 8n * MiB });
    const denying = memlockThen(DENY);
    e.load(denying);
    softOnly(pid, 1n * MiB);
    const denied = e.evaluateHere(denying.sha256, req, spec);
    expect(denied).not.toBeInstanceOf(Promise);
    // Undone already: the limit is back before anything else runs.
    expect(memlockFromProc(pid)).toEqual({ soft: 1n * MiB, hard: 8n * MiB });
    expect(memlockCalls((denied as Outcome).capabilityCalls)).toMatchObject([{ result: 'ok', undo: 'undone' }]);
  });

  it('memlock then deny: undoing a lowered hard limit fails with EPERM (no CAP_SYS_RESOURCE), and the outcome says so', async () => {
    const { pid, spec } = vm();
    const p = memlockThen(DENY);
    const e = engine({}, p);
    const out = await e.evaluate(p.sha256, request({ requesterPid: pid, targetPid: pid, bytes: 4n * MiB }), spec);
    expect(out).toMatchObject({ decision: 'deny', reason: 'denied' });
    expect(memlockCalls(out.capabilityCalls)).toMatchObject([
      { result: 'ok', effect: { before: { soft: 8n * MiB, hard: 8n * MiB } }, undo: 'undo failed: EPERM' },
    ]);
    // The audit will list exactly what the kernel shows.
    expect(memlockFromProc(pid)).toEqual({ soft: 4n * MiB, hard: 4n * MiB });
  });

  it('memlock then trap: undone', async () => {
    const { pid, spec } = vm();
    softOnly(pid, 2n * MiB);
    const p = memlockThen('(unreachable)');
    const e = engine({}, p);
    const out = await e.evaluate(p.sha256, request({ requesterPid: pid, targetPid: pid, bytes: 8n * MiB }), spec);
    expect(out).toMatchObject({ decision: 'deny', errorKind: 'trap' });
    expect(memlockCalls(out.capabilityCalls)).toMatchObject([{ result: 'ok', undo: 'undone' }]);
    expect(memlockFromProc(pid)).toEqual({ soft: 2n * MiB, hard: 8n * MiB });
  });

  it('memlock then spin: the run leaves this thread, exhausts its fuel in the worker, and the effect made here is listed and undone', async () => {
    const { pid, spec } = vm();
    softOnly(pid, 3n * MiB);
    const p = memlockThen(SPIN);
    const e = engine({}, p);
    const out = await e.evaluate(p.sha256, request({ requesterPid: pid, targetPid: pid, bytes: 8n * MiB }), spec);
    expect(e.inlineStats).toMatchObject({ continued: 1 });
    expect(out).toMatchObject({ decision: 'deny', errorKind: 'fuel-exhausted' });
    expect(memlockCalls(out.capabilityCalls)).toMatchObject([{ result: 'ok', undo: 'undone' }]);
    expect(memlockFromProc(pid)).toEqual({ soft: 3n * MiB, hard: 8n * MiB });
  });

  it('memlock then timeout: the worker is terminated, the call made before is still listed, and undone', async () => {
    const { pid, spec } = vm();
    softOnly(pid, 1n * MiB);
    const p = memlockThen(SPIN, { fuel: 1e15, deadlineMs: 300 });
    const e = engine({}, p);
    const out = await e.evaluate(p.sha256, request({ requesterPid: pid, targetPid: pid, bytes: 8n * MiB }), spec);
    expect(out).toMatchObject({ decision: 'deny', errorKind: 'timeout' });
    expect(memlockCalls(out.capabilityCalls)).toMatchObject([{ pid, bytes: 8n * MiB, result: 'ok', undo: 'undone' }]);
    expect(memlockFromProc(pid)).toEqual({ soft: 1n * MiB, hard: 8n * MiB });
  });

  it('memlock in the worker, then a timeout there: the ledger lists the call, and it is undone', async () => {
    const { pid, spec } = vm();
    softOnly(pid, 1n * MiB);
    const p = memlockThen(SPIN, { fuel: 1e15, deadlineMs: 300 });
    const e = engine({ inlineFuel: 0 }, p);
    const out = await e.evaluate(p.sha256, request({ requesterPid: pid, targetPid: pid, bytes: 8n * MiB }), spec);
    expect(out).toMatchObject({ decision: 'deny', errorKind: 'timeout' });
    expect(out.capabilityCalls).toMatchObject([
      { op: 'query-vm-identity', pid, result: 'some' },
      {
        op: 'set-memlock',
        pid,
        bytes: 8n * MiB,
        result: 'ok',
        effect: { before: { soft: 1n * MiB, hard: 8n * MiB } },
        undo: 'undone',
      },
    ]);
    expect(memlockFromProc(pid)).toEqual({ soft: 1n * MiB, hard: 8n * MiB });
  });

  it('memlock then the worker dies (test seam): the ledger lists the call, and it is undone', async () => {
    const { pid, spec } = vm();
    softOnly(pid, 1n * MiB);
    const p = memlockThen('(call $allow)');
    const e = engine({ inlineFuel: 0, seams: { exitWorkerAfterEffect: true } }, p);
    const out = await e.evaluate(p.sha256, request({ requesterPid: pid, targetPid: pid, bytes: 8n * MiB }), spec);
    expect(out).toMatchObject({
      decision: 'deny',
      errorKind: 'host-error',
      errorDetail: expect.stringMatching(/worker died/),
    });
    expect(memlockCalls(out.capabilityCalls)).toMatchObject([{ pid, bytes: 8n * MiB, result: 'ok', undo: 'undone' }]);
    expect(memlockFromProc(pid)).toEqual({ soft: 1n * MiB, hard: 8n * MiB });
  });

  it("memlock then a repeated run that diverges (test seam): both runs are accounted for, the first run's effect is undone", async () => {
    const { pid, spec } = vm();
    softOnly(pid, 1n * MiB);
    // The call takes ~17k of the 40k slice; the burn after it runs the slice out.
    const p = memlockThen(`${burn(60_000)} (call $allow)`);
    const tampered = {
      replayTape: (tape: Parameters<NonNullable<NonNullable<EngineOptions['seams']>['replayTape']>>[0]) =>
        tape.map((t) => (t.op === 'set-memlock' ? { ...t, bytes: t.bytes + 1n } : t)),
    };
    const e = engine({ inlineFuel: 40_000, seams: tampered }, p);
    const out = await e.evaluate(p.sha256, request({ requesterPid: pid, targetPid: pid, bytes: 8n * MiB }), spec);
    expect(e.inlineStats).toMatchObject({ continued: 1 });
    expect(out).toMatchObject({
      decision: 'deny',
      errorKind: 'host-error',
      errorDetail: expect.stringMatching(/replay diverged/),
    });
    // The first run's call reached the kernel (on this thread); the repeated run's was refused.
    expect(memlockCalls(out.capabilityCalls)).toMatchObject([{ pid, bytes: 8n * MiB, result: 'ok', undo: 'undone' }]);
    expect(memlockFromProc(pid)).toEqual({ soft: 1n * MiB, hard: 8n * MiB });
  });

  it('memlock then allow: the effect stays, nothing is undone', async () => {
    const { pid, spec } = vm();
    const p = memlockThen('(call $allow)');
    const e = engine({}, p);
    const out = await e.evaluate(p.sha256, request({ requesterPid: pid, targetPid: pid, bytes: 5n * MiB }), spec);
    expect(out.decision).toBe('allow');
    expect(memlockCalls(out.capabilityCalls)[0]!.undo).toBeUndefined();
    expect(memlockFromProc(pid)).toEqual({ soft: 5n * MiB, hard: 5n * MiB });
  });
});

describe('intents are journaled before the effect', () => {
  it('on this thread and in a worker: one intent per effect, with the decision, the call, the value before and the process', async () => {
    const { pid, spec } = vm();
    const j = journal();
    const p = memlockThen('(call $allow)');
    // A worker-only engine and a speculative one: the effect is made by the worker, then here.
    const inWorker = engine({ inlineFuel: 0, effectsJournal: j }, p);
    const here = engine({ effectsJournal: j }, p);
    const c1 = context(pid, 6n * MiB);
    expect(
      await inWorker.evaluate(p.sha256, request({ requesterPid: pid, targetPid: pid, bytes: 6n * MiB }), spec, {
        context: c1,
      }),
    ).toMatchObject({ decision: 'allow' });
    const q = p;
    const c2 = context(pid, 5n * MiB);
    expect(
      await here.evaluate(q.sha256, request({ requesterPid: pid, targetPid: pid, bytes: 5n * MiB }), spec, {
        context: c2,
      }),
    ).toMatchObject({ decision: 'allow' });
    expect(here.inlineStats).toMatchObject({ decided: 1 });
    // Still there: what a restart would find if the daemon died before recording these decisions.
    const reopened = EffectJournal.open(j.file);
    journals.push(reopened.journal);
    const { intents } = reopened;
    const startTime = readStartTime(pid)!;
    expect(intents).toEqual([
      {
        context: c1,
        intent: { op: 'set-memlock', pid, startTime, bytes: 6n * MiB, before: { soft: 8n * MiB, hard: 8n * MiB } },
        at: expect.any(String),
      },
      {
        context: c2,
        intent: { op: 'set-memlock', pid, startTime, bytes: 5n * MiB, before: { soft: 6n * MiB, hard: 6n * MiB } },
        at: expect.any(String),
      },
    ]);
  });

  it('an effect whose intent cannot be written does not happen (this thread: the journal is closed)', async () => {
    const { pid, spec } = vm();
    const j = journal();
    j.close();
    const p = memlockThen('(call $allow)');
    const e = engine({ effectsJournal: j }, p);
    const out = await e.evaluate(p.sha256, request({ requesterPid: pid, targetPid: pid, bytes: 4n * MiB }), spec, {
      context: context(pid, 4n * MiB),
    });
    expect(memlockCalls(out.capabilityCalls)).toMatchObject([
      { result: 'internal', detail: expect.stringMatching(/intent .* could not be recorded.*nothing was changed/) },
    ]);
    expect(memlockFromProc(pid)).toEqual({ soft: 8n * MiB, hard: 8n * MiB });
  });

  it('an effect whose intent cannot be written does not happen (a worker, a full journal)', async () => {
    const { pid, spec } = vm();
    // One slot: the first call's intent takes it, the second call of the same decision finds none.
    const { journal: j } = EffectJournal.open(path.join(dir, `effects-${++seq}`), 1);
    journals.push(j);
    const p = memlockThen(
      `(call $set_memlock (local.get $tpid) (i64.const ${3n * MiB}) (i32.const 1536)) (call $allow)`,
    );
    const e = engine({ inlineFuel: 0, effectsJournal: j }, p);
    const out = await e.evaluate(p.sha256, request({ requesterPid: pid, targetPid: pid, bytes: 4n * MiB }), spec, {
      context: context(pid, 4n * MiB),
    });
    expect(memlockCalls(out.capabilityCalls)).toMatchObject([
      { bytes: 4n * MiB, result: 'ok', effect: { journalSlot: 0 } },
      {
        bytes: 3n * MiB,
        result: 'internal',
        detail: expect.stringMatching(/effects journal .* is full.*nothing was changed/),
      },
    ]);
    expect(memlockFromProc(pid)).toEqual({ soft: 4n * MiB, hard: 4n * MiB });
    e.releaseIntents(out.capabilityCalls); // what the request path does once the decision is recorded
    expect(j.claimed).toBe(0);
  });
});
