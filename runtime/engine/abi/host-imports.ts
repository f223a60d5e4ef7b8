// The core-level import object for module `capgate:policy/host@1.0.0`: lowers each capability
// call's arguments from the guest's flat values, applies the per-evaluation quota, calls the
// Capabilities, lowers the result, and records the call. Every call first ends a speculative
// run whose time slice is over and pays its price in fuel (host-call-prices.ts).
import { HOST_INTERFACE, LOG_LEVELS, type VmIdentity } from '../../contract/types.ts';
import type { SetMemlockResult } from '../../capabilities/capabilities.ts';
import { abiFault, GuestFault } from './guest-fault.ts';
import { CAPABILITY_CALL_FUEL, LOG_BYTE_FUEL, HOST_CALL_FUEL } from './host-call-prices.ts';
import type { GuestMemory } from './guest-memory.ts';
import type { EvaluationState } from './evaluation-state.ts';
import { lowerSetMemlockResult, lowerVmIdentityOption } from './lower-results.ts';

function memoryOf(state: EvaluationState, fn: string): GuestMemory {
  // A core start function runs before the instance's exports exist; a component could not make
  // this call either (its lowered imports need the instance's memory).
  if (state.memory === undefined)
    throw state.fail(new GuestFault('trap', `${fn} called before the instance existed (from the start function)`));
  return state.memory;
}

/** Counts a capability call; false once the quota is used up (and marks the evaluation). A call
 * within the quota pays for the host's work first. */
function admit(state: EvaluationState, fn: string): boolean {
  state.capabilityCallCount++;
  if (state.capabilityCallCount <= state.limits.maxCapabilityCalls) {
    state.charge(fn, CAPABILITY_CALL_FUEL);
    return true;
  }
  state.quotaExceeded = true;
  return false;
}

/** What a Capabilities method's throw becomes: the host's failure, not the guest's. */
function hostFailure(state: EvaluationState, fn: string, err: unknown): GuestFault {
  return state.fail(
    new GuestFault('host-error', `${fn} failed in the host: ${err instanceof Error ? err.message : String(err)}`),
  );
}

/**
 * What a host call throws into the guest for a throw in its body: GuestFaults again (recorded),
 * a trap of the guest's own code as it is, anything else as host-error. (Each import catches
 * with try/catch rather than through a closure: every speculative run makes several calls.)
 */
function guestThrow(state: EvaluationState, fn: string, err: unknown): unknown {
  if (err instanceof GuestFault) return state.fail(err);
  if (err instanceof RangeError || err instanceof WebAssembly.RuntimeError) return err; // guest realloc trapped / stack
  return state.fail(new GuestFault('host-error', `${fn}: ${err instanceof Error ? err.message : String(err)}`));
}

const QUOTA_EXCEEDED: SetMemlockResult = Object.freeze({ ok: false, error: 'quota-exceeded' });

/** Where the imports find the evaluation they serve. An instance may be created before its
 * request arrives (off the critical path); its state is attached when the request does. */
export interface StateHolder {
  state: EvaluationState | undefined;
}

function stateOf(holder: StateHolder, fn: string): EvaluationState {
  if (holder.state === undefined) throw new GuestFault('trap', `${fn} called outside an evaluation`);
  return holder.state;
}

export function createHostImports(holder: StateHolder): WebAssembly.Imports {
  const host = {
    'set-memlock': (pidRaw: number, bytesRaw: bigint, retptr: number): void => {
      const state = stateOf(holder, 'set-memlock');
      try {
        state.enter('set-memlock', HOST_CALL_FUEL);
        const memory = memoryOf(state, 'set-memlock');
        const pid = pidRaw >>> 0;
        const bytes = BigInt.asUintN(64, bytesRaw);
        // Check the return area before acting: a privileged side effect must not precede an ABI fault.
        memory.check('set-memlock return area', retptr, 2, 1);
        const quotaOk = admit(state, 'set-memlock');
        let result = QUOTA_EXCEEDED;
        if (quotaOk) {
          try {
            result = state.capabilities.setMemlock(pid, bytes);
          } catch (err) {
            throw hostFailure(state, 'set-memlock', err);
          }
        }
        // Calls past the quota are counted, and only the first refused one is recorded.
        if (quotaOk || state.capabilityCallCount === state.limits.maxCapabilityCalls + 1) {
          state.capabilityCalls.push(
            result.ok
              ? // Every allowed set-memlock: one object, not a spread of another.
                result.effect !== undefined
                ? { op: 'set-memlock', pid, bytes, result: 'ok', effect: result.effect }
                : { op: 'set-memlock', pid, bytes, result: 'ok' }
              : {
                  op: 'set-memlock',
                  pid,
                  bytes,
                  result: result.error,
                  ...(result.detail !== undefined ? { detail: result.detail } : {}),
                  ...(result.effect !== undefined ? { effect: result.effect } : {}),
                },
          );
        }
        lowerSetMemlockResult(memory, retptr, result);
      } catch (err) {
        throw guestThrow(state, 'set-memlock', err);
      }
    },
    'query-vm-identity': (pidRaw: number, retptr: number): void => {
      const state = stateOf(holder, 'query-vm-identity');
      try {
        state.enter('query-vm-identity', HOST_CALL_FUEL);
        const memory = memoryOf(state, 'query-vm-identity');
        const pid = pidRaw >>> 0;
        memory.check('query-vm-identity return area', retptr, 32, 4);
        const quotaOk = admit(state, 'query-vm-identity');
        // option<> has no error case: past the quota the guest sees none, and the outcome is a deny.
        let identity: VmIdentity | null = null;
        if (quotaOk) {
          try {
            identity = state.capabilities.queryVmIdentity(pid);
          } catch (err) {
            throw hostFailure(state, 'query-vm-identity', err);
          }
        }
        if (quotaOk || state.capabilityCallCount === state.limits.maxCapabilityCalls + 1) {
          state.capabilityCalls.push(
            identity === null
              ? { op: 'query-vm-identity', pid, result: 'none' }
              : { op: 'query-vm-identity', pid, result: 'some', vmUuid: identity.uuid },
          );
        }
        lowerVmIdentityOption(memory, state.realloc, retptr, identity);
      } catch (err) {
        throw guestThrow(state, 'query-vm-identity', err);
      }
    },
    log: (levelRaw: number, ptr: number, len: number): void => {
      const state = stateOf(holder, 'log');
      try {
        state.enter('log', HOST_CALL_FUEL);
        const memory = memoryOf(state, 'log');
        const limits = state.limits;
        const n = len >>> 0;
        if (n > limits.maxGuestStringBytes)
          throw abiFault(`log message: string of ${n} bytes exceeds the limit of ${limits.maxGuestStringBytes} bytes`);
        // Past the caps a line is counted and never read: a log storm costs only its calls.
        if (state.logs.length >= limits.maxLogLines || state.logBytes + n > limits.maxLogBytes) {
          state.droppedLogLines++;
          return;
        }
        const level = LOG_LEVELS[levelRaw >>> 0];
        if (level === undefined) throw abiFault(`log level ${levelRaw >>> 0} is not one of ${LOG_LEVELS.join(', ')}`);
        state.charge('log', n * LOG_BYTE_FUEL);
        const message = memory.string('log message', ptr, n, limits.maxGuestStringBytes);
        state.logs.push({ level, message });
        state.logBytes += n;
      } catch (err) {
        throw guestThrow(state, 'log', err);
      }
    },
  };
  return { [HOST_INTERFACE]: host };
}
