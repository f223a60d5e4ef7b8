// Well-formed policies are accepted with the right PolicyInfo.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readPrebuilt } from '../../../scripts/build-guests/prebuilt.ts';
import { compilePolicy, FUEL_EXPORT, OOM_EXPORT } from '../../../runtime/engine/compile.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';
import { componentFromWat, policyWat } from '../../support/components.ts';

describe('compilePolicy accepts contract-conforming components', () => {
  it('a minimal policy importing all host functions', async () => {
    const bytes = await componentFromWat(policyWat());
    const r = await compilePolicy(bytes, DEFAULT_LIMITS);
    if (!r.ok) throw new Error(`rejected: ${r.kind}: ${r.message}`);
    const p = r.policy;
    expect(p.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(p.size).toBe(bytes.length);
    expect(p.imports).toEqual(['capgate:policy/types@1.0.0', 'capgate:policy/host@1.0.0']);
    expect(p.exports).toEqual(['evaluate']);
    expect(p.hostFunctions).toEqual(['set-memlock', 'query-vm-identity', 'log']);
    expect(p.wit).toMatch(/import capgate:policy\/host@1\.0\.0;/);
    expect(p.wit).toMatch(/export evaluate: func\(req: request\) -> decision;/);
    expect(p.limits).toEqual(DEFAULT_LIMITS);
    // The runtime protocol: guest exports unchanged plus the two engine globals.
    const exports = WebAssembly.Module.exports(p.module)
      .map((e) => `${e.kind}:${e.name}`)
      .sort();
    expect(exports).toEqual(
      [
        'memory:memory',
        'function:evaluate',
        'function:cabi_realloc',
        'function:cabi_post_evaluate',
        `global:${FUEL_EXPORT}`,
        `global:${OOM_EXPORT}`,
      ].sort(),
    );
    const imports = WebAssembly.Module.imports(p.module).map((i) => `${i.module}#${i.name}`);
    // Plus the memory, which the engine supplies (recycled and zeroed) for each fresh instance.
    expect(imports).toEqual([
      'capgate:policy/host@1.0.0#set-memlock',
      'capgate:policy/host@1.0.0#query-vm-identity',
      'capgate:policy/host@1.0.0#log',
      'capgate:engine#memory',
    ]);
  });

  it('a policy that uses only log (a subset of the host) and has no cabi_realloc', async () => {
    const wat = `(module
      (import "capgate:policy/host@1.0.0" "log" (func $log (param i32 i32 i32)))
      (memory (export "memory") 1)
      (func (export "evaluate") (param i32 i32 i32 i32 i64) (result i32) (i32.const 1024)))`;
    const r = await compilePolicy(await componentFromWat(wat), DEFAULT_LIMITS);
    if (!r.ok) throw new Error(`rejected: ${r.kind}: ${r.message}`);
    expect(r.policy.hostFunctions).toEqual(['log']);
    expect(r.policy.imports).toContain('capgate:policy/host@1.0.0');
  });

  it('a policy that imports nothing from the host', async () => {
    const r = await compilePolicy(await componentFromWat(policyWat({ hostImports: false })), DEFAULT_LIMITS);
    if (!r.ok) throw new Error(`rejected: ${r.kind}: ${r.message}`);
    expect(r.policy.hostFunctions).toEqual([]);
    expect(r.policy.imports).not.toContain('capgate:policy/host@1.0.0');
  });
});

// The example policies of every SDK language: AssemblyScript ones are built by the test
// global setup, Rust and C ones are the committed prebuilt components.
describe('compilePolicy accepts the real example policies', () => {
  for (const lang of ['assemblyscript', 'rust', 'c'] as const) {
    for (const name of ['memlock-cap', 'vfio-only']) {
      it(`${lang}/${name}`, async () => {
        const bytes =
          lang === 'assemblyscript'
            ? readFileSync(
                fileURLToPath(new URL(`../../../guest-examples/assemblyscript/build/${name}.wasm`, import.meta.url)),
              )
            : readPrebuilt(lang, name);
        const r = await compilePolicy(bytes, DEFAULT_LIMITS);
        if (!r.ok) throw new Error(`rejected: ${r.kind}: ${r.message}`);
        expect([...r.policy.hostFunctions].sort()).toEqual(['log', 'query-vm-identity', 'set-memlock']);
        expect(r.policy.exports).toEqual(['evaluate']);
        const exports = WebAssembly.Module.exports(r.policy.module).map((e) => e.name);
        expect(exports).toEqual(
          expect.arrayContaining(['memory', 'evaluate', 'cabi_realloc', FUEL_EXPORT, OOM_EXPORT]),
        );
      });
    }
  }
});
