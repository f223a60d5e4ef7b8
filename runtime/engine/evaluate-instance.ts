// One policy decision in the current thread on a prepared fresh instance (InstanceFactory makes
// them), host imports over the given Capabilities: evaluate, lift, post-return. Never throws;
// every failure is a deny Outcome. Callers that must not block (the daemon) run this inside a
// worker (worker/), or as a bounded speculative run (speculative/).
import { OPERATIONS, type PolicyDecision, type PolicyRequest } from '../contract/types.ts';
import type { Capabilities } from '../capabilities/capabilities.ts';
import { abiFault } from './abi/guest-fault.ts';
import { GuestMemory } from './abi/guest-memory.ts';
import { EvaluationState, type TimeSlice } from './abi/evaluation-state.ts';
import type { StateHolder } from './abi/host-imports.ts';
import { liftDecision } from './abi/lift-decision.ts';
import type { GuestRealloc } from './abi/lower-results.ts';
import { classifyFailure, type Failure } from './classify-failure.ts';
import { instrumentationView, type InstrumentationView } from './instrumentation-globals.ts';
import type { EngineLimits } from './limits.ts';
import type { Outcome } from './outcome.ts';

type Fn = (...args: unknown[]) => unknown;

function exportedFunction(exports: WebAssembly.Exports, name: string): Fn | undefined {
  const f = exports[name];
  return typeof f === 'function' ? (f as Fn) : undefined;
}

function toI32(n: number): number {
  return n | 0; // u32 -> the i32 with the same bits
}

/** A fresh, never-used instance of a policy, made before (or when) its request arrives. */
export interface PreparedInstance {
  /** Where its host imports find the evaluation they serve; may be shared by instances of one
   * policy (InstanceFactory), since only one instance runs at a time and only during its evaluation. */
  readonly holder: StateHolder;
  readonly instance: WebAssembly.Instance | undefined;
  /** Why instantiation failed, if it did (classified when the request arrives). */
  readonly error: unknown;
  readonly instantiateUs: number;
  /** The memory the module imports (instrumented modules), to recycle once the decision is made. */
  readonly memory: WebAssembly.Memory | undefined;
}

const consumed = new WeakSet<PreparedInstance>();

/** A speculative run (engine/speculative/): less fuel than limits.fuel, and a time slice. */
export interface SpeculativeSlice {
  /** Fuel of this run (instrumented modules only). */
  fuel: number;
  time: TimeSlice;
}

/**
 * One decision on a prepared instance, which is consumed: it must never be passed again.
 * `slice` runs it as a speculative run that the caller repeats in full when the slice's fuel
 * runs out, its time is over (then `slice.time.expired`) or a memory.grow was refused (then
 * `slice.time.growthRefused`: the speculative run's memory is made not to grow).
 */
export function evaluatePrepared(
  prepared: PreparedInstance,
  request: PolicyRequest,
  capabilities: Capabilities,
  limits: EngineLimits,
  slice?: SpeculativeSlice,
): Outcome {
  const t0 = performance.now() - prepared.instantiateUs / 1000;
  const globals = prepared.instance !== undefined ? instrumentationView(prepared.instance.exports) : undefined;
  if (slice !== undefined && slice.fuel < limits.fuel && globals?.setFuel(slice.fuel) === true) {
    limits = withFuel(limits, slice.fuel);
  }
  const state = new EvaluationState(capabilities, limits, slice?.time);
  if (consumed.has(prepared) || prepared.holder.state !== undefined) {
    return finish(state, undefined, limits, t0, {
      failure: { kind: 'host-error', detail: 'engine bug: a prepared instance was used twice' },
    });
  }
  consumed.add(prepared);
  prepared.holder.state = state;
  try {
    const outcome = run(prepared, globals, state, request, limits, t0);
    // A grow refused after the last host call (or in the guest's return path) ends nowhere else.
    if (slice !== undefined && globals?.oom() === true) slice.time.growthRefused = true;
    return outcome;
  } finally {
    // Host imports called outside an evaluation (e.g. by an uninstrumented start function of the
    // next instance sharing this holder) find no state and trap.
    prepared.holder.state = undefined;
  }
}

/** `limits` with `fuel` instead: kept per limits object, so that speculative runs (all of the
 * same slice) do not copy the limits every time. */
const withFuelCache = new WeakMap<EngineLimits, Map<number, EngineLimits>>();
function withFuel(limits: EngineLimits, fuel: number): EngineLimits {
  let byFuel = withFuelCache.get(limits);
  if (byFuel === undefined) withFuelCache.set(limits, (byFuel = new Map()));
  let l = byFuel.get(fuel);
  if (l === undefined) byFuel.set(fuel, (l = Object.freeze({ ...limits, fuel })));
  return l;
}

/** The view of a memory: memories are recycled (fresh-memory-pool.ts), and so are their views
 * (it holds nothing of an evaluation, and makes new ones when the memory grew). */
const guestMemories = new WeakMap<WebAssembly.Memory, GuestMemory>();
function guestMemoryOf(memory: WebAssembly.Memory): GuestMemory {
  let m = guestMemories.get(memory);
  if (m === undefined) guestMemories.set(memory, (m = new GuestMemory(memory)));
  return m;
}

function run(
  prepared: PreparedInstance,
  globals: InstrumentationView | undefined,
  state: EvaluationState,
  request: PolicyRequest,
  limits: EngineLimits,
  t0: number,
): Outcome {
  let phase = 'instantiation (start function)';
  let decision: PolicyDecision;
  try {
    if (prepared.instance === undefined) throw prepared.error;
    const exports = prepared.instance.exports;
    state.fuel = globals;
    const memory = exports['memory'];
    if (!(memory instanceof WebAssembly.Memory)) throw abiFault('the core module exports no memory named "memory"');
    state.memory = guestMemoryOf(memory);
    state.realloc = exportedFunction(exports, 'cabi_realloc') as GuestRealloc | undefined;
    const evaluate = exportedFunction(exports, 'evaluate');
    if (evaluate === undefined) throw abiFault('the core module exports no function "evaluate"');
    phase = 'evaluate';
    const op = OPERATIONS.indexOf(request.operation);
    const retptr = evaluate(
      op,
      toI32(request.requesterPid),
      toI32(request.requesterUid),
      toI32(request.targetPid),
      BigInt.asIntN(64, request.bytes),
    );
    if (state.fault !== undefined) throw state.fault; // the guest swallowed a host fault
    if (typeof retptr !== 'number') throw abiFault(`evaluate returned ${typeof retptr}, expected an i32 pointer`);
    phase = 'lifting the decision';
    decision = liftDecision(state.memory, retptr, limits.maxGuestStringBytes);
    phase = 'cabi_post_evaluate';
    exportedFunction(exports, 'cabi_post_evaluate')?.(retptr);
    if (state.fault !== undefined) throw state.fault;
  } catch (err) {
    return finish(state, globals, limits, t0, { failure: classifyFailure(err, state.fault, globals, phase) });
  }
  if (state.quotaExceeded) {
    const n = state.capabilityCallCount;
    return finish(state, globals, limits, t0, {
      failure: {
        kind: 'quota-exceeded',
        detail: `${n} capability calls, the limit is ${limits.maxCapabilityCalls} per evaluation`,
      },
    });
  }
  return finish(state, globals, limits, t0, { decision });
}

function finish(
  state: EvaluationState,
  globals: InstrumentationView | undefined,
  limits: EngineLimits,
  t0: number,
  result: { decision: PolicyDecision } | { failure: Failure },
): Outcome {
  const left = globals?.fuelLeft() ?? Number.NaN;
  const fuelUsed = Number.isNaN(left) ? 0 : Math.min(limits.fuel, Math.max(0, limits.fuel - left));
  const durationUs = Math.round((performance.now() - t0) * 1000);
  // One literal each, no spread of a shared part: every evaluation makes one of these.
  const o: Outcome =
    'failure' in result
      ? {
          decision: 'deny',
          reason: result.failure.kind,
          errorKind: result.failure.kind,
          errorDetail: result.failure.detail,
          fuelUsed,
          durationUs,
          capabilityCalls: state.capabilityCalls,
          logs: state.logs,
        }
      : result.decision.kind === 'allow'
        ? {
            decision: 'allow',
            reason: '',
            fuelUsed,
            durationUs,
            capabilityCalls: state.capabilityCalls,
            logs: state.logs,
          }
        : {
            decision: 'deny',
            reason: result.decision.reason,
            fuelUsed,
            durationUs,
            capabilityCalls: state.capabilityCalls,
            logs: state.logs,
          };
  if (state.droppedLogLines > 0) o.droppedLogLines = state.droppedLogLines;
  return o;
}
