// Hostile policies and uploads of every class the daemon must withstand, shared by the
// daemon's hostile tests and `npm run bench -- isolation`. A policy attacks on every request, or
// (`onStormOnly`) only on a request for STORM_BYTES, so that one bound policy serves a victim
// VM normally while a hostile VM triggers the attack.
import { componentFromWat, policyWat } from './components.ts';
import { CORE_OK, handMade } from '../engine/compile/hand-made.ts';

/** The request size that triggers a policy's attack. */
export const STORM_BYTES = 7777n;

/** query-vm-identity(target), then set-memlock(target, bytes). */
export const SET = `(call $query_vm_identity (local.get $tpid) (i32.const 8192)) (call $set_memlock (local.get $tpid) (local.get $bytes) (i32.const 3072))`;
/** deny("denied"), the reason at 4096 (DATA). */
export const DENY = `(i32.store8 (i32.const 1024) (i32.const 1)) (i32.store (i32.const 1028) (i32.const 4096)) (i32.store (i32.const 1032) (i32.const 6)) (i32.const 1024)`;
export const ALLOW = '(i32.const 1024)';
/** ~300,000 iterations of a small loop: over the main thread's fuel slice, far under the full fuel. */
export const BURN = `(loop $b (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $b (i32.lt_u (local.get $i) (i32.const 300000))))`;
export const SPIN = `(loop $l (br $l)) ${ALLOW}`;
const DATA = `(data (i32.const 4096) "denied") (data (i32.const 16384) "${'a'.repeat(4096)}")`;

const loop = (n: number, body: string): string =>
  `(block $d (loop $l (br_if $d (i32.ge_u (local.get $i) (i32.const ${n}))) ${body} (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l)))`;

/** The attack of each hostile policy (an evaluate body that ends the call). `$i` is a free i32 local. */
export const ATTACKS = {
  /** 23,000 log lines of 4 KiB a decision. */
  'log-storm': `${loop(23_000, '(call $log (i32.const 1) (i32.const 16384) (i32.const 4096))')} (return ${ALLOW})`,
  /** 30,000 memory.grow(0) a decision. */
  'grow-storm': `${loop(30_000, '(drop (memory.grow (i32.const 0)))')} (return ${ALLOW})`,
  /** 21 one-page grows a decision (1.3 MiB): what the main thread's fuel slice pays for, and allow. */
  'page-storm': `${loop(21, '(drop (memory.grow (i32.const 1)))')} (return ${ALLOW})`,
  /** set-memlock on the main thread, then the page-storm's grows: the worker replays the call and grows. */
  'memlock-then-grow': `${SET} ${loop(21, '(drop (memory.grow (i32.const 1)))')} (return ${ALLOW})`,
  'memlock-then-deny': `${SET} (return ${DENY})`,
  'memlock-then-trap': `${SET} (unreachable)`,
  'memlock-then-spin': `${SET} ${SPIN} (return ${ALLOW})`,
  /** Burns past the main thread's slice before set-memlock: the effect happens in a worker. */
  'memlock-in-worker': `${BURN} ${SET} (return ${ALLOW})`,
  /** set-memlock on the main thread, then burns past the slice: the worker replays it. */
  'memlock-then-burn': `${SET} ${BURN} (return ${ALLOW})`,
} as const;

export type HostileClass = keyof typeof ATTACKS;

/** A hostile policy: its attack on every request, or only on one for STORM_BYTES (then set-memlock and allow). */
export function hostilePolicy(name: HostileClass, options: { onStormOnly?: boolean } = {}): Promise<Uint8Array> {
  const attack = ATTACKS[name];
  const body =
    options.onStormOnly === true
      ? `(local $i i32) (if (i64.eq (local.get $bytes) (i64.const ${STORM_BYTES})) (then ${attack})) ${SET} ${ALLOW}`
      : `(local $i i32) ${attack}`;
  return componentFromWat(policyWat({ evaluateBody: body, extra: DATA }));
}

/** A tuple type `width` wide, nested `depth` deep, as a DAG (a few bytes a level). */
function nestedTuple(width: number, depth: number): string {
  return [
    `(type (;0;) (tuple ${'u8 '.repeat(width)}))`,
    ...Array.from({ length: depth - 1 }, (_, d) => `(type (;${d + 1};) (tuple ${`${d} `.repeat(width)}))`),
  ].join('\n');
}

/** Uploads whose cost is paid at instantiation or compile time; each must be refused. */
export const UPLOAD_BOMBS = {
  /** A 10M-entry table (2.8 KB of component). */
  'table-bomb': () => componentFromWat(policyWat({ extra: '(table 10000000 funcref)' })),
  /** A 200,000-entry element segment. */
  'element-bomb': () =>
    componentFromWat(
      policyWat({
        extra: `(func $nop) (table 10 funcref) (elem (i32.const 0) ${Array.from({ length: 200_000 }, () => '$nop').join(' ')})`,
      }),
    ),
  /** 20,000 functions. */
  'function-count': () =>
    componentFromWat(policyWat({ extra: Array.from({ length: 20_000 }, (_, i) => `(func $f${i})`).join(' ') })),
  /** An imported type 70 wide, nested 3 deep, in place of a contract type (its mismatch message was the bomb). */
  'type-bomb': () =>
    handMade({
      coreModule: CORE_OK,
      componentImports: `(import "capgate:policy/host@1.0.0" (instance ${nestedTuple(70, 3)} (export "log-level" (type (eq 2)))))`,
    }),
} as const;

export type UploadBomb = keyof typeof UPLOAD_BOMBS;

/** An expression `depth` deep: each level an add and a multiply. */
const deepSum = (depth: number): string =>
  depth === 0 ? '(local.get 0)' : `(i32.add ${deepSum(depth - 1)} (i32.mul (local.get 0) (i32.const ${depth})))`;

/**
 * A policy within every upload limit whose compile is costly: 2,000 functions of 40-deep
 * expressions (~0.5 MB of component), ~0.7 s of the compile process's CPU time on the 2-core VM
 * (a plain policy takes a few tens of ms).
 */
export function compileBomb(): Promise<Uint8Array> {
  const body = deepSum(40);
  return componentFromWat(
    policyWat({
      extra: Array.from({ length: 2000 }, (_, i) => `(func $f${i} (param i32) (result i32) ${body})`).join(' '),
    }),
  );
}
