// A trap names the function it happened in: the policy's function names survive instrumentation,
// and the engine reads the trapping frame (and, under a runtime's panic machinery, the policy's
// own caller) from the stack. Hostile names stay bounded and printable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../runtime/engine/engine.ts';
import { encodeU32 } from '../../../runtime/engine/instrument/core-sections.ts';
import { withFunctionNamesOnly } from '../../../runtime/engine/instrument/names.ts';
import { demangle, trapSite } from '../../../runtime/engine/trap-site.ts';
import { componentFromCore, coreFromWat, policyWat } from '../../support/components.ts';
import { request, simulated } from './fixtures/worlds.ts';

let engine: Engine;

beforeAll(() => {
  engine = new Engine({ workers: 1, linuxCapabilities: false, limits: { deadlineMs: 5_000 } });
});
afterAll(async () => {
  await engine.close();
});

/** The core module with a name section naming functions by index, appended as the spec allows. */
function withNames(core: Uint8Array, names: Array<[number, Uint8Array | string]>): Uint8Array {
  const entries = Buffer.concat([
    Buffer.from(encodeU32(names.length)),
    ...names.map(([index, name]) => {
      const bytes = typeof name === 'string' ? Buffer.from(name) : Buffer.from(name);
      return Buffer.concat([Buffer.from(encodeU32(index)), Buffer.from(encodeU32(bytes.length)), bytes]);
    }),
  ]);
  const payload = Buffer.concat([Buffer.from([4, ...Buffer.from('name'), 1, ...encodeU32(entries.length)]), entries]);
  return new Uint8Array(Buffer.concat([Buffer.from(core), Buffer.from([0, ...encodeU32(payload.length)]), payload]));
}

// Imports are functions 0-2; evaluate 3, cabi_realloc 4, cabi_post_evaluate 5, then $inner 6, $outer 7.
const TRAPPING = policyWat({
  evaluateBody: '(call $outer (local.get $bytes)) (i32.const 1024)',
  extra: `(func $inner (param i64) (if (i64.eq (local.get 0) (i64.const 1)) (then unreachable)) (drop (i64.div_u (i64.const 1) (local.get 0))))
  (func $outer (param i64) (call $inner (local.get 0)))`,
});

async function detailOf(core: Uint8Array, bytes = 1n): Promise<string | undefined> {
  const compiled = await engine.compile(await componentFromCore(core));
  if (!compiled.ok) throw new Error(compiled.message);
  const o = await engine.evaluate(compiled.policy.sha256, request({ bytes }), simulated());
  expect(o.errorKind).toBe('trap');
  return o.errorDetail;
}

describe('a trap names its function', () => {
  it('by the name the policy gave it', async () => {
    const core = withNames(coreFromWat(TRAPPING), [
      [3, 'evaluate'],
      [6, 'my_policy::inner'],
      [7, 'my_policy::outer'],
    ]);
    expect(await detailOf(core)).toBe('evaluate: unreachable, in my_policy::inner (wasm function 6)');
    expect(await detailOf(core, 0n)).toBe('evaluate: divide by zero, in my_policy::inner (wasm function 6)');
  });

  it('by its index when the policy was built without names', async () => {
    expect(await detailOf(coreFromWat(TRAPPING))).toBe('evaluate: unreachable, in wasm function 6');
  });

  it("and the policy's own caller when the trap is in a runtime's panic machinery", async () => {
    const core = withNames(coreFromWat(TRAPPING), [
      [6, '_ZN4core9panicking5panic17h0123456789abcdefE'],
      [7, '_ZN9my_policy8evaluate17hfedcba9876543210E'],
    ]);
    expect(await detailOf(core)).toBe(
      'evaluate: unreachable, in core::panicking::panic (wasm function 6), called from my_policy::evaluate (wasm function 7)',
    );
  });

  it('keeps hostile names printable, on one line, and short', async () => {
    const hostile = new TextEncoder().encode(
      `evil\n    at fake (wasm://wasm/00:wasm-function[1]:0x1)\u0007${'x'.repeat(200_000)}`,
    );
    const detail = (await detailOf(
      withNames(coreFromWat(TRAPPING), [
        [6, hostile],
        [7, 'ok'],
      ]),
    ))!;
    expect(detail).not.toMatch(/[\n\u0000-\u001f]/);
    expect(detail.length).toBeLessThan(200);
    expect(detail).toMatch(
      /^evaluate: unreachable, in evil\? {4}at fake \(wasm:\/\/wasm\/00:wasm-function\[1\]:0x1\)\?x+… \(wasm function 6\)$/,
    );
  });
});

describe("the trap's site", () => {
  // Read from V8's call sites when the stack was not printed yet (the engine's case), from the
  // stack's text when it was: the same site either way.
  it('is the same whether the stack was already printed or not', () => {
    const core = withNames(coreFromWat('(module (func $inner unreachable) (func (export "f") (call $inner)))'), [
      [0, '_ZN4core9panicking5panic17h0123456789abcdefE'],
      [1, 'my_policy::evaluate'],
    ]);
    const f = new WebAssembly.Instance(new WebAssembly.Module(core)).exports['f'] as () => void;
    const trap = (): Error => {
      try {
        f();
      } catch (err) {
        return err as Error;
      }
      throw new Error('no trap');
    };
    const printed = trap();
    expect(printed.stack).toContain('wasm-function[0]');
    const fresh = trap();
    const site = ', in core::panicking::panic (wasm function 0), called from my_policy::evaluate (wasm function 1)';
    expect(trapSite(printed)).toBe(site);
    expect(trapSite(fresh)).toBe(site);
    expect(trapSite(fresh)).toBe(site); // read again: its stack now holds the call sites
    expect(trapSite(new Error('no wasm frame'))).toBe('');
  });
});

describe('the names kept through instrumentation', () => {
  it('are decoded leniently: a name that is not UTF-8 does not stop the upload', () => {
    const core = withNames(coreFromWat(TRAPPING), [[6, new Uint8Array([0x66, 0xff, 0xfe, 0x00, 0x0a])]]);
    const kept = withFunctionNamesOnly(core);
    expect(WebAssembly.Module.customSections(new WebAssembly.Module(kept), 'name')).toHaveLength(1);
    expect(Buffer.from(kept).includes(Buffer.from('f\ufffd\ufffd??'))).toBe(true);
  });

  it('drop every other custom section', () => {
    const core = coreFromWat(TRAPPING);
    const dwarf = new Uint8Array(
      Buffer.concat([Buffer.from(core), Buffer.from([0, 12, 11, ...Buffer.from('.debug_info')])]),
    );
    const kept = withFunctionNamesOnly(dwarf);
    expect(WebAssembly.Module.customSections(new WebAssembly.Module(kept), '.debug_info')).toHaveLength(0);
    expect(kept.length).toBe(core.length);
  });
});

describe('many names', () => {
  it('a policy with 100,000 function names still compiles', async () => {
    const names: Array<[number, string]> = [
      [6, 'inner'],
      ...Array.from({ length: 100_000 }, (_, i): [number, string] => [i + 8, `f${i}`]),
    ];
    expect(await detailOf(withNames(coreFromWat(TRAPPING), names))).toBe(
      'evaluate: unreachable, in inner (wasm function 6)',
    );
  });
});

describe('Rust symbol demangling', () => {
  it('reads the legacy mangling and leaves other names alone', () => {
    expect(demangle('_ZN4core6option13expect_failed17h87816a823d052ad5E')).toBe('core::option::expect_failed');
    expect(demangle('_ZN4core9panicking13panic_display17h868401dec3bd2d2fE.138')).toBe(
      'core::panicking::panic_display',
    );
    expect(demangle('_ZN3std9panicking19begin_panic_handler28_$u7b$$u7b$closure$u7d$$u7d$17h106d97be21bfe094E')).toBe(
      'std::panicking::begin_panic_handler::{{closure}}',
    );
    expect(demangle('_ZN60_$LT$alloc..string..String$u20$as$u20$core..fmt..Display$GT$3fmt17h1111111111111111E')).toBe(
      '<alloc::string::String as core::fmt::Display>::fmt',
    );
    expect(demangle('evaluate')).toBe('evaluate');
    expect(demangle('_ZN9bad')).toBe('_ZN9bad');
  });
});
