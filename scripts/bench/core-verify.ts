// What verifying the compile process's output costs (runtime/engine/verify/): the verifier in
// this thread on the guest examples and on a ~4 MB module, against V8's own WebAssembly.validate
// of the same bytes (baseline), and what the daemon pays per upload with the verifier in its
// worker: the time until the answer, and the part of it spent on the calling thread.
// `npm run bench -- verify`.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { packagePath } from '../../runtime/bootstrap/package-root.ts';
import { compilePolicyWithCore } from '../../runtime/engine/compile.ts';
import { DEFAULT_LIMITS, type EngineLimits } from '../../runtime/engine/limits.ts';
import { verifyInstrumentedCore } from '../../runtime/engine/verify/verify-core.ts';
import { verifyCoreOffThread } from '../../runtime/engine/verify/verify-off-thread.ts';
import { componentFromCore, coreFromWat, policyWat } from '../../test/support/components.ts';
import { printTable, sample } from './table.ts';

const BIG_LIMITS: EngineLimits = { ...DEFAULT_LIMITS, maxModuleBytes: 32 << 20, maxCodeBytes: 8 << 20 };

/** A guest of `n` functions, each a loop over ~800 instructions of arithmetic and memory, called in a chain. */
function bigCore(n: number): Uint8Array {
  const fns: string[] = [];
  for (let i = 0; i < n; i++) {
    const step = `(local.set $x (i32.add (i32.mul (local.get $x) (i32.const ${i + 3})) (i32.load offset=${(i % 64) * 4} (local.get $x))))`;
    fns.push(`(func $f${i} (param $x i32) (result i32) (local $i i32)
      (loop $l ${step.repeat(90)}
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 3))))
      ${i + 1 < n ? `(call $f${i + 1} (local.get $x))` : '(local.get $x)'})`);
  }
  return coreFromWat(
    policyWat({ evaluateBody: '(drop (call $f0 (local.get $op))) (i32.const 1024)', extra: fns.join('\n') }),
  );
}

async function instrumented(component: Uint8Array, limits: EngineLimits): Promise<Uint8Array> {
  const { result, core } = await compilePolicyWithCore(component, limits);
  if (!result.ok || core === undefined) throw new Error(`not compiled: ${JSON.stringify(result)}`);
  return core;
}

export async function run(): Promise<void> {
  const cases: Array<{ name: string; core: Uint8Array; limits: EngineLimits }> = [];
  for (const lang of ['rust', 'c'])
    for (const name of ['memlock-cap', 'vfio-only']) {
      const component = new Uint8Array(readFileSync(packagePath('guest-examples', lang, 'prebuilt', `${name}.wasm`)));
      cases.push({
        name: `${lang}/${name}`,
        core: await instrumented(component, DEFAULT_LIMITS),
        limits: DEFAULT_LIMITS,
      });
    }
  const big = await instrumented(await componentFromCore(bigCore(3000)), BIG_LIMITS);
  cases.push({ name: 'generated, 3000 functions', core: big, limits: BIG_LIMITS });

  for (const c of cases) {
    const rounds = c.core.length > 1 << 20 ? 5 : 40;
    const validateUs = await sample(() => void WebAssembly.validate(c.core), rounds, 1);
    const verifyUs = await sample(() => void verifyInstrumentedCore(c.core, c.limits), rounds, 1);
    const callingUs: number[] = [];
    const offThreadUs: number[] = [];
    for (let i = 0; i < Math.min(rounds, 10); i++) {
      const t0 = performance.now();
      const pending = verifyCoreOffThread(c.core, c.limits);
      callingUs.push((performance.now() - t0) * 1000);
      const outcome = await pending;
      offThreadUs.push((performance.now() - t0) * 1000);
      if (!outcome.ok) throw new Error(outcome.message);
    }
    printTable(
      `core verifier: ${c.name} (${(c.core.length / 1024).toFixed(0)} KiB)`,
      [
        { name: 'WebAssembly.validate (baseline)', samplesUs: validateUs },
        { name: 'verifier, this thread', samplesUs: verifyUs },
        { name: 'verifier in its worker: until the answer', samplesUs: offThreadUs },
        { name: '  of which on the calling thread', samplesUs: callingUs },
      ],
      'WebAssembly.validate (baseline)',
    );
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
