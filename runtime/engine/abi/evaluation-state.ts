// Everything one evaluation accumulates on the host side: capability calls, log lines, the
// first fault. One per instance; discarded with it.
import type { Capabilities } from '../../capabilities/capabilities.ts';
import type { InstrumentationView } from '../instrumentation-globals.ts';
import type { EngineLimits } from '../limits.ts';
import type { CapabilityCall, LogLine } from '../outcome.ts';
import { GuestFault } from './guest-fault.ts';
import type { GuestMemory } from './guest-memory.ts';
import type { GuestRealloc } from './lower-results.ts';

/**
 * The time slice of a speculative run on the daemon's main thread (engine/speculative/): a host
 * call first checks the clock (once CLOCK_CHECK_FUEL units of fuel were used since the last
 * check), and once the slice has ended the run stops there, before the call does anything, to be
 * continued in a worker. `expired` tells the caller it happened.
 * A speculative run's memory cannot grow (its maximum is its initial size: grown memories never
 * belong to the main thread's isolate, see speculative/inline-runner.ts), so a memory.grow the
 * policy makes there is refused (the instrumentation's oom flag). The run's calls from then on
 * stop it, before they do anything, and `growthRefused` tells the caller to continue the run in a
 * worker, whose memory grows as the plan allows: what the guest computed after the refusal
 * (wasm alone, bounded by the slice) is never seen.
 */
export interface TimeSlice {
  /** Whether the slice has ended (reads its clock). */
  over(): boolean;
  expired: boolean;
  growthRefused: boolean;
}

/**
 * Fuel between two reads of a slice's clock. A read of the thread CPU clock is a system call
 * (~1.3 µs): at every host call, a storm of cheap calls (log past its caps, 128 units each)
 * would spend more time reading the clock than running. 4096 units are ~20 µs at the worst rate
 * of speculative/inline-runner.ts (WORST_NS_PER_FUEL): a run stops at most that late.
 */
export const CLOCK_CHECK_FUEL = 4096;

export class EvaluationState {
  readonly capabilities: Capabilities;
  readonly limits: EngineLimits;
  readonly capabilityCalls: CapabilityCall[] = [];
  readonly logs: LogLine[] = [];
  droppedLogLines = 0;
  /** Bytes of the log lines kept. */
  logBytes = 0;
  /** Capability calls attempted, refused ones included. */
  capabilityCallCount = 0;
  quotaExceeded = false;
  /** The first host-side fault; it decides the outcome even if the guest caught the throw. */
  fault: GuestFault | undefined;
  /** Set once the instance exists; host calls from a start function find them unset. */
  memory: GuestMemory | undefined;
  realloc: GuestRealloc | undefined;
  /** The instance's fuel, which host calls charge; unset for an uninstrumented module. */
  fuel: InstrumentationView | undefined;
  readonly slice: TimeSlice | undefined;
  /** The slice's clock is read at the first host call with this much fuel left, or less. */
  #nextClockCheck: number;

  constructor(capabilities: Capabilities, limits: EngineLimits, slice?: TimeSlice) {
    this.capabilities = capabilities;
    this.limits = limits;
    this.slice = slice;
    this.#nextClockCheck = limits.fuel - CLOCK_CHECK_FUEL;
  }

  /** Records the fault (first one wins) and returns it, for the caller to throw. */
  fail(fault: GuestFault): GuestFault {
    this.fault ??= fault;
    return fault;
  }

  /**
   * The entry of every host call, before it does anything: ends a speculative run whose memory
   * refused to grow or whose time slice is over, then charges `units` of fuel (fuel-exhausted
   * when there is not enough).
   */
  enter(fn: string, units: number): void {
    const slice = this.slice;
    const fuel = this.fuel;
    if (slice !== undefined && fuel?.oom() === true) {
      slice.growthRefused = true;
      throw this.fail(
        new GuestFault('fuel-exhausted', `the run's memory could not grow on the daemon's thread (at a call of ${fn})`),
      );
    }
    // The fuel is read once for both (the clock check and the charge): each read makes a bigint.
    const left = fuel === undefined ? Number.NaN : fuel.fuelLeft();
    if (slice !== undefined && this.#clockDue(left) && slice.over()) {
      slice.expired = true;
      throw this.fail(
        new GuestFault('fuel-exhausted', `the run passed its time slice on the daemon's thread at a call of ${fn}`),
      );
    }
    if (fuel !== undefined) this.#setLeft(fuel, fn, left - units);
  }

  /** Whether the slice's clock is due a read, `left` fuel remaining (always, for a module without fuel: NaN). */
  #clockDue(left: number): boolean {
    if (Number.isNaN(left)) return true;
    if (left > this.#nextClockCheck) return false;
    this.#nextClockCheck = left - CLOCK_CHECK_FUEL;
    return true;
  }

  /** Charges `units` of fuel for work the host does for the guest. */
  charge(fn: string, units: number): void {
    const fuel = this.fuel;
    if (fuel !== undefined) this.#setLeft(fuel, fn, fuel.fuelLeft() - units);
  }

  #setLeft(fuel: InstrumentationView, fn: string, left: number): void {
    fuel.setFuel(left);
    if (left < 0) throw this.fail(new GuestFault('fuel-exhausted', `fuel budget used up in a call of ${fn}`));
  }
}
