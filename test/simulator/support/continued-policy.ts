// A guest whose decision needs more fuel than the daemon's speculative slice (engine.inlineFuel),
// with an effect before the slice runs out and a call after it that sees that effect:
// set-memlock(target, bytes) lowers the limit (an error: deny "lower-failed"); a loop burns
// ~10 fuel an iteration; then set-memlock(target, bytes + 4Ki) raises it again above the hard
// limit the first call left. Without CAP_SYS_RESOURCE the kernel refuses that: allow. If the
// continued run did not see the first call's effect, the raise would succeed: deny
// "first-effect-lost". Written in WAT, componentized, compiled by the engine like any upload.
import { coreToComponent, policyWat, uninstrumented, watToCore } from '../../engine/run/fixtures/wat.ts';

/** Loop iterations: a few times the default slice's fuel, well under the default fuel. */
export const BURN = 25_000;

export function continuedPolicyWat(burn = BURN): string {
  return policyWat(`
  (data (i32.const 16) "lower-failed")
  (data (i32.const 32) "first-effect-lost")
  (func (export "evaluate") (param $op i32) (param $rpid i32) (param $ruid i32) (param $tpid i32) (param $bytes i64) (result i32)
    (local $i i32)
    (call $set_memlock (local.get $tpid) (local.get $bytes) (i32.const 1536))
    (if (i32.load8_u (i32.const 1536)) (then (return (call $deny (i32.const 16) (i32.const 12)))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const ${burn})))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (call $set_memlock (local.get $tpid) (i64.add (local.get $bytes) (i64.const 4096)) (i32.const 1536))
    (if (i32.load8_u (i32.const 1536)) (then (return (call $allow))))
    (call $deny (i32.const 32) (i32.const 17)))`);
}

/** The policy as a component, as `capgate build` would write it. */
export function continuedPolicyComponent(burn = BURN): Promise<Uint8Array> {
  return coreToComponent(watToCore(uninstrumented(continuedPolicyWat(burn))));
}
