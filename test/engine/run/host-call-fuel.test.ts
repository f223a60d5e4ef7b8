// What host calls take from the instance's fuel (EvaluationState.enter/charge over the fuel
// global of an instrumented instance: a real i64 WebAssembly.Global): exactly their price, the
// time slice's clock read once per CLOCK_CHECK_FUEL units, fuel-exhausted once it goes below zero,
// with what was taken written to the global (the run's fuelUsed is read from it).
import { describe, expect, it } from 'vitest';
import { createSimulatedCapabilities } from '../../../runtime/capabilities/simulated/capabilities.ts';
import { CLOCK_CHECK_FUEL, EvaluationState, type TimeSlice } from '../../../runtime/engine/abi/evaluation-state.ts';
import { GuestFault } from '../../../runtime/engine/abi/guest-fault.ts';
import { FUEL_GLOBAL, instrumentationView } from '../../../runtime/engine/instrumentation-globals.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';
import { world } from './fixtures/worlds.ts';

function withFuel(fuel: number, slice?: TimeSlice): { state: EvaluationState; global: WebAssembly.Global } {
  const global = new WebAssembly.Global({ value: 'i64', mutable: true }, BigInt(fuel));
  const state = new EvaluationState(createSimulatedCapabilities(world()), { ...DEFAULT_LIMITS, fuel }, slice);
  state.fuel = instrumentationView({ [FUEL_GLOBAL]: global });
  return { state, global };
}

describe('host calls and the fuel global', () => {
  it('take exactly their price, and fail fuel-exhausted (recorded) once the fuel goes below zero', () => {
    const { state, global } = withFuel(1000);
    state.enter('log', 128);
    expect(global.value).toBe(872n);
    state.charge('log', 72);
    expect(global.value).toBe(800n);
    state.charge('log', 800);
    expect(global.value).toBe(0n); // zero left is not exhausted
    expect(() => state.enter('set-memlock', 128)).toThrow(GuestFault);
    expect(global.value).toBe(-128n);
    expect(state.fault).toMatchObject({ kind: 'fuel-exhausted', message: expect.stringContaining('set-memlock') });
  });

  it('read the time slice clock at the first call at or past each CLOCK_CHECK_FUEL units, and stop the run there once it is over', () => {
    const readAt: bigint[] = [];
    let over = false;
    let global: WebAssembly.Global | undefined;
    const slice: TimeSlice = {
      over: () => (readAt.push(global!.value as bigint), over),
      expired: false,
      growthRefused: false,
    };
    const fuel = 10 * CLOCK_CHECK_FUEL; // 40960
    const made = withFuel(fuel, slice);
    global = made.global;
    // Calls of 1000 units each. The fuel left before each call: 40960, 39960, ...; the first read
    // is due at or below 40960 - 4096 = 36864 (35960), then at or below 35960 - 4096 (30960), ...
    for (let call = 0; call < 16; call++) made.state.enter('log', 1000);
    expect(readAt).toEqual([35_960n, 30_960n, 25_960n]);
    expect(global.value).toBe(24_960n);
    over = true;
    // The next read is due at or below 25960 - 4096 = 21864: the calls at 24960 ... 21960 go on,
    // the one at 20960 reads the clock, stops the run and takes nothing.
    let calls = 0;
    expect(() => {
      for (;;) {
        made.state.enter('log', 1000);
        calls++;
      }
    }).toThrow(GuestFault);
    expect(calls).toBe(4);
    expect(readAt.at(-1)).toBe(20_960n);
    expect(global.value).toBe(20_960n);
    expect(slice.expired).toBe(true);
    expect(made.state.fault).toMatchObject({ kind: 'fuel-exhausted', message: expect.stringContaining('time slice') });
  });
});
