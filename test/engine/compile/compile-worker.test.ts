// Uploads are compiled off the calling thread, in a worker with a time limit: a compile that
// runs past it is stopped and refused with a clear message, and the next upload gets a fresh
// worker (the daemon-level hostile tests show the daemon serving while bombs are uploaded). At upload, a timed trial instantiation
// refuses a policy that is slow to instantiate.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../runtime/engine/engine.ts';
import { trialInstantiation } from '../../../runtime/engine/instantiation-cost.ts';
import { compilePolicy } from '../../../runtime/engine/compile.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';
import { CompileWorker } from '../../../runtime/engine/worker/compile-worker.ts';
import { componentFromWat, policyWat } from '../../support/components.ts';
import { libc } from '../../../runtime/os/libc.ts';
import { BACKGROUND_NICE } from '../../../runtime/os/thread-priority.ts';

const engines: Engine[] = [];
const workers: CompileWorker[] = [];
afterAll(async () => {
  await Promise.all([...engines.map((e) => e.close()), ...workers.map((w) => w.close())]);
});

describe('the compile worker', () => {
  it('stops a compile past its time limit, refuses it, and the next compile gets a fresh worker', async () => {
    const compiler = new CompileWorker();
    workers.push(compiler);
    const good = await componentFromWat(policyWat());
    expect((await compiler.compile(good, DEFAULT_LIMITS)).ok).toBe(true); // the worker is up
    // No compile takes under a millisecond (parse, instrument, compile, WIT, trial instantiation),
    // and the timer fires before a result that arrives in the same turn.
    const r = await compiler.compile(good, DEFAULT_LIMITS, 1);
    expect(r).toMatchObject({
      ok: false,
      kind: 'invalid-module',
      message: 'compiling the policy took longer than 1 ms; it was stopped',
    });
    expect(compiler.stopped).toBe(1);
    expect((await compiler.compile(good, DEFAULT_LIMITS)).ok).toBe(true);
  }, 120_000);

  it('runs at a low CPU priority (nice 10), and the rest of the process keeps its own', async () => {
    const engine = new Engine({ workers: 1, linuxCapabilities: false });
    engines.push(engine);
    expect((await engine.compile(await componentFromWat(policyWat()))).ok).toBe(true);
    const tid = engine.compileThreadId;
    expect(tid).not.toBeNull();
    // Field 19 of /proc/<pid>/task/<tid>/stat is the thread's nice value (counted after the comm's ')').
    const nice = (t: number): number => {
      const stat = readFileSync(`/proc/${process.pid}/task/${t}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    };
    expect(nice(tid!)).toBe(BACKGROUND_NICE);
    expect(nice(libc().gettid())).toBe(0); // this thread, which started the worker
  }, 120_000);

  it('a refusal from the worker is the same as on the calling thread', async () => {
    const engine = new Engine({ workers: 1, linuxCapabilities: false });
    engines.push(engine);
    const bomb = await componentFromWat(policyWat({ extra: '(table 10000000 funcref)' }));
    const inWorker = await engine.compile(bomb);
    const here = await compilePolicy(bomb, DEFAULT_LIMITS);
    expect(inWorker).toEqual(here);
    expect(inWorker.ok).toBe(false);
  }, 120_000);
});

describe('trial instantiation at upload', () => {
  it('measures a policy that instantiates within the limit', async () => {
    const r = await compilePolicy(await componentFromWat(policyWat()), DEFAULT_LIMITS);
    if (!r.ok) throw new Error(r.message);
    expect(r.policy.instantiation).toMatchObject({
      tableEntries: expect.any(Number),
      elementEntries: 0,
      dataBytes: 0,
      globals: expect.any(Number),
    });
    expect(r.policy.instantiation!.trialUs).toBeGreaterThanOrEqual(0);
  });

  it('refuses a policy whose trial instantiation takes the limit or more (injected clock)', async () => {
    const r = await compilePolicy(await componentFromWat(policyWat()), DEFAULT_LIMITS);
    if (!r.ok) throw new Error(r.message);
    let t = 0;
    const clock = (): number => (t += 6); // every instantiation "takes" 6 ms
    expect(() => trialInstantiation(r.policy.module, 5, clock)).toThrow(
      /instantiating the policy took 6\.0 ms in a trial at upload; the limit is 5 ms \(limits\.maxInstantiateMs\)/,
    );
    expect(trialInstantiation(r.policy.module, 7, clock)).toBe(6000);
  });
});
