// Uploads are compiled off the calling thread, in a worker with a time limit: a compile that
// runs past it is stopped and refused with a clear message, the engine's thread keeps turning
// meanwhile, and the next upload gets a fresh worker. At upload, a timed trial instantiation
// refuses a policy that is slow to instantiate.
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../runtime/engine/engine.ts';
import { trialInstantiation } from '../../../runtime/engine/instantiation-cost.ts';
import { compilePolicy } from '../../../runtime/engine/compile.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';
import { componentFromWat, policyWat } from '../../support/components.ts';

const engines: Engine[] = [];
afterAll(async () => {
  await Promise.all(engines.map((e) => e.close()));
});

/** Within every upload limit, but a lot of code for binaryen to instrument: seconds of work. */
async function slowToCompile(): Promise<Uint8Array> {
  const body = Array.from({ length: 400 }, (_, i) => `(local.set $x (i32.add (local.get $x) (i32.const ${i})))`).join(' ');
  const funcs = Array.from({ length: 300 }, (_, i) => `(func $f${i} (param $x i32) (result i32) ${body} (local.get $x))`).join('\n');
  return componentFromWat(policyWat({ extra: funcs }));
}

describe('the compile worker', () => {
  it('stops a compile past its time limit, refuses it, and keeps the calling thread turning', async () => {
    const engine = new Engine({ workers: 1, linuxCapabilities: false, compileWorker: { timeoutMs: 2000 } });
    engines.push(engine);
    const good = await componentFromWat(policyWat());
    expect((await engine.compile(good)).ok).toBe(true); // the worker is up and warm
    const bomb = await slowToCompile();
    let turns = 0;
    const ticker = setInterval(() => turns++, 5);
    const r = await engine.compile(bomb);
    clearInterval(ticker);
    expect(r).toMatchObject({ ok: false, kind: 'invalid-module', message: expect.stringMatching(/took longer than 2000 ms; it was stopped/) });
    expect(turns).toBeGreaterThan(0); // this thread ran timers while the worker compiled
    // The next upload gets a fresh worker.
    expect((await engine.compile(good)).ok).toBe(true);
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
    expect(r.policy.instantiation).toMatchObject({ tableEntries: expect.any(Number), elementEntries: 0, dataBytes: 0, globals: expect.any(Number) });
    expect(r.policy.instantiation!.trialUs).toBeGreaterThanOrEqual(0);
  });

  it('refuses a policy whose trial instantiation takes the limit or more (injected clock)', async () => {
    const r = await compilePolicy(await componentFromWat(policyWat()), DEFAULT_LIMITS);
    if (!r.ok) throw new Error(r.message);
    let t = 0;
    const clock = (): number => (t += 6); // every instantiation "takes" 6 ms
    expect(() => trialInstantiation(r.policy.module, 5, clock)).toThrow(/instantiating the policy took 6\.0 ms in a trial at upload; the limit is 5 ms \(limits\.maxInstantiateMs\)/);
    expect(trialInstantiation(r.policy.module, 7, clock)).toBe(6000);
  });
});
