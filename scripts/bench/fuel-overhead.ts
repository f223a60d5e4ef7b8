// Fuel metering overhead on CPU-bound guest code: the same core module run raw and after
// compilePolicy's instrumentation. `npm run bench -- fuel`.
import { pathToFileURL } from 'node:url';
import { compilePolicy } from '../../runtime/engine/compile.ts';
import { DEFAULT_LIMITS } from '../../runtime/engine/limits.ts';
import { componentFromCore, coreFromWat, policyWat } from '../../test/support/components.ts';
import { printTable, sample } from './table.ts';
import { policyImports } from '../../runtime/engine/policy-memory.ts';

// Two kernels: a tight arithmetic loop (worst case: the loop body is tiny, so the charge is
// a large share of it) and a memory-bound loop with a call per iteration.
const KERNELS: Record<string, string> = {
  'tight loop (xorshift, 1e6 iters)': `(local $i i32) (local $x i64) (local.set $x (i64.const 88172645463325252))
    (loop $l
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
      (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000000))))
    (i64.store (i32.const 1024) (local.get $x)) (i32.const 1024)`,
  'memory + call loop (1e6 iters)': `(local $i i32)
    (loop $l
      (i32.store (i32.and (i32.shl (local.get $i) (i32.const 2)) (i32.const 0xfffc))
        (call $mix (local.get $i) (i32.load (i32.and (i32.shl (local.get $i) (i32.const 3)) (i32.const 0xfffc)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000000))))
    (i32.const 1024)`,
};
const EXTRA = '(func $mix (param i32 i32) (result i32) (i32.add (i32.mul (local.get 0) (i32.const 31)) (local.get 1)))';

const inert = {
  'capgate:policy/host@1.0.0': { 'set-memlock': () => {}, 'query-vm-identity': () => {}, log: () => {} },
};
type Evaluate = (a: number, b: number, c: number, d: number, e: bigint) => number;
// policyImports: a compiled policy imports its memory (the engine recycles memories).
const evaluateOf = (m: WebAssembly.Module): Evaluate =>
  new WebAssembly.Instance(m, policyImports(m, inert)).exports.evaluate as Evaluate;

export async function run(): Promise<void> {
  for (const [name, body] of Object.entries(KERNELS)) {
    const core = coreFromWat(policyWat({ evaluateBody: body, extra: EXTRA }));
    const raw = evaluateOf(await WebAssembly.compile(core));
    const r = await compilePolicy(await componentFromCore(core), { ...DEFAULT_LIMITS, fuel: Number.MAX_SAFE_INTEGER });
    if (!r.ok) throw new Error(r.message);
    const metered = evaluateOf(r.policy.module);
    // Interleaved, so load from other processes hits both sides alike; min is the least noisy.
    const rawUs: number[] = [];
    const meteredUs: number[] = [];
    for (let i = 0; i < 40; i++) {
      rawUs.push(...(await sample(() => raw(0, 0, 0, 0, 0n), 3, 1)));
      meteredUs.push(...(await sample(() => metered(0, 0, 0, 0, 0n), 3, 1)));
    }
    printTable(
      `fuel overhead: ${name}`,
      [
        { name: 'raw', samplesUs: rawUs },
        { name: 'fuel-metered', samplesUs: meteredUs },
      ],
      'raw',
    );
    console.log(
      `min: raw ${Math.min(...rawUs).toFixed(0)} µs, metered ${Math.min(...meteredUs).toFixed(0)} µs, ratio ${(Math.min(...meteredUs) / Math.min(...rawUs)).toFixed(2)}x`,
    );
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
