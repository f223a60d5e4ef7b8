// runtime/packaging/componentize.ts: core module -> component of the world capgate:policy/policy.
import { describe, expect, it } from 'vitest';
import binaryen from 'binaryen';
import { componentWit } from '@bytecodealliance/jco-transpile/wasm-tools';
import { ComponentizeError, componentize } from '../../runtime/packaging/componentize.ts';
import { AS_EXAMPLES, componentBytes, coreBytes } from '../sdk-assemblyscript/fixtures.ts';

function watToCore(wat: string): Uint8Array {
  const m = binaryen.parseText(wat);
  try {
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

async function refusal(input: Uint8Array): Promise<ComponentizeError> {
  try {
    await componentize(input);
  } catch (e) {
    if (e instanceof ComponentizeError) return e;
    throw e;
  }
  throw new Error('componentize accepted the input');
}

describe('componentize', () => {
  it('rejects bytes that are not WebAssembly, saying what to pass instead', async () => {
    const e = await refusal(new TextEncoder().encode('#!/bin/sh\necho not wasm\n'));
    expect(e.kind).toBe('not-wasm');
    expect(e.message).toMatch(/not a WebAssembly binary.*core module/);
  });

  it('rejects an empty input', async () => {
    expect((await refusal(new Uint8Array())).kind).toBe('not-wasm');
  });

  it('rejects a component: it needs no componentize step', async () => {
    const e = await refusal(componentBytes('vfio-only'));
    expect(e.kind).toBe('already-component');
    expect(e.message).toMatch(/upload it as is/);
  });

  it('rejects a core module without evaluate, naming what is missing and what to export', async () => {
    const e = await refusal(watToCore('(module (memory (export "memory") 1))'));
    expect(e.kind).toBe('does-not-fit-world');
    expect(e.toolMessage).toMatch(/evaluate/);
    expect(e.message).toMatch(/must export evaluate, cabi_post_evaluate, cabi_realloc and memory/);
  });

  it('rejects a core module importing outside the contract (env.abort), naming the import', async () => {
    const wat = `(module
      (import "env" "abort" (func (param i32 i32 i32 i32)))
      (memory (export "memory") 1)
      (func (export "evaluate") (param i32 i32 i32 i32 i64) (result i32) i32.const 0)
      (func (export "cabi_post_evaluate") (param i32))
      (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0))`;
    const e = await refusal(watToCore(wat));
    expect(e.kind).toBe('does-not-fit-world');
    expect(e.toolMessage).toMatch(/env/);
    expect(e.message).toMatch(/may import only "capgate:policy\/host@1.0.0"/);
  });

  it('rejects evaluate with the wrong core signature', async () => {
    const wat = `(module
      (memory (export "memory") 1)
      (func (export "evaluate") (param i32) (result i32) i32.const 0)
      (func (export "cabi_post_evaluate") (param i32))
      (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0))`;
    const e = await refusal(watToCore(wat));
    expect(e.kind).toBe('does-not-fit-world');
    expect(e.toolMessage).toMatch(/evaluate|type/);
  });

  it('a minimal hand-written module that fits the world becomes a component exporting evaluate', async () => {
    const wat = `(module
      (memory (export "memory") 1)
      (func (export "evaluate") (param i32 i32 i32 i32 i64) (result i32) i32.const 16)
      (func (export "cabi_post_evaluate") (param i32))
      (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024))`;
    const wit = await componentWit(await componentize(watToCore(wat)));
    expect(wit).toContain('export evaluate: func(req: request) -> decision;');
    expect(wit).not.toContain('import capgate:policy/host@1.0.0;'); // imports nothing it does not call
  });

  for (const name of AS_EXAMPLES) {
    it(`the built ${name} component fits the world: imports host@1.0.0, exports evaluate`, async () => {
      const wit = await componentWit(componentBytes(name));
      expect(wit).toContain('import capgate:policy/host@1.0.0;');
      expect(wit).toContain('use capgate:policy/types@1.0.0.{request, decision};');
      expect(wit).toContain('export evaluate: func(req: request) -> decision;');
      // Componentizing is deterministic: the build output is what componentize gives today.
      expect(await componentize(coreBytes(name))).toEqual(new Uint8Array(componentBytes(name)));
    });
  }
});
