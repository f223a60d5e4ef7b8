// Everything outside the contract is refused at upload time with a kind and a message that
// names the offending item.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../runtime/engine/compile.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';
import type { CompileErrorKind } from '../../../runtime/engine/api.ts';
import { coreFromWat, componentFromCore, componentFromWat, policyWat, POLICY_WIT } from '../../support/components.ts';
import { CORE_OK, handMade } from './hand-made.ts';

async function expectRejected(
  bytes: Uint8Array,
  kind: CompileErrorKind,
  message: RegExp,
  limits = DEFAULT_LIMITS,
): Promise<void> {
  const r = await compilePolicy(bytes, limits);
  if (r.ok) throw new Error('the policy was accepted');
  expect(r.kind).toBe(kind);
  expect(r.message).toMatch(message);
}

/** Deterministic pseudo-random bytes. */
function noise(n: number, seed: string): Uint8Array {
  const out = new Uint8Array(n);
  let block = createHash('sha256').update(seed).digest();
  for (let i = 0; i < n; i++) {
    if (i % 32 === 0 && i > 0) block = createHash('sha256').update(block).digest();
    out[i] = block[i % 32]!;
  }
  return out;
}

describe('not a component', () => {
  it('random bytes', async () => {
    await expectRejected(noise(4096, 'random'), 'invalid-module', /not a WebAssembly binary.*capgate build/);
  });

  it('a plain core module', async () => {
    await expectRejected(
      coreFromWat(policyWat()),
      'invalid-module',
      /core wasm module, not a component.*capgate build/,
    );
  });

  it('a component preamble followed by garbage', async () => {
    const bytes = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, ...noise(512, 'tail')]);
    await expectRejected(bytes, 'invalid-module', /malformed component|not supported|unknown/);
  });

  it('a truncated component', async () => {
    const bytes = await componentFromWat(policyWat());
    await expectRejected(
      bytes.subarray(0, Math.floor(bytes.length / 2)),
      'invalid-module',
      /malformed component: .*(end of data|exceeds the remaining)/,
    );
  });

  it('a component of another binary version', async () => {
    const bytes = (await componentFromWat(policyWat())).slice();
    bytes[4] = 0x0c;
    await expectRejected(bytes, 'invalid-module', /version 0xc layer 1/);
  });

  it('an oversized component, naming size and cap', async () => {
    const bytes = await componentFromWat(policyWat());
    const limits = { ...DEFAULT_LIMITS, maxModuleBytes: 1000 };
    await expectRejected(bytes, 'invalid-module', new RegExp(`${bytes.length} bytes; the limit is 1000 bytes`), limits);
  });
});

describe('imports', () => {
  it('a wasi:* instance import', async () => {
    await expectRejected(
      await handMade({ coreModule: CORE_OK, componentImports: '(import "wasi:filesystem/types@0.2.0" (instance))' }),
      'disallowed-import',
      /"wasi:filesystem\/types@0\.2\.0"/,
    );
  });

  it('another version of the host interface', async () => {
    await expectRejected(
      await handMade({ coreModule: CORE_OK, componentImports: '(import "capgate:policy/host@2.0.0" (instance))' }),
      'disallowed-import',
      /"capgate:policy\/host@2\.0\.0"/,
    );
  });

  it('a top-level function import', async () => {
    await expectRejected(
      await handMade({ coreModule: CORE_OK, componentImports: '(import "exec" (func))' }),
      'disallowed-import',
      /func "exec"/,
    );
  });

  it('a host function the contract does not define', async () => {
    await expectRejected(
      await handMade({
        coreModule: CORE_OK,
        componentImports: '(import "capgate:policy/host@1.0.0" (instance (export "exec" (func))))',
      }),
      'disallowed-import',
      /"exec" from capgate:policy\/host@1\.0\.0/,
    );
  });

  it('a host function with the wrong component type', async () => {
    await expectRejected(
      await handMade({
        coreModule: CORE_OK,
        componentImports:
          '(import "capgate:policy/host@1.0.0" (instance (type (func (param "pid" u32) (param "bytes" u32))) (export "set-memlock" (func (type 0)))))',
      }),
      'invalid-module',
      /"set-memlock" has the wrong type .*expected u64, found u32/,
    );
  });

  it('an env.* import in the core module', async () => {
    await expectRejected(
      await handMade({
        coreModule: `(import "env" "abort" (func)) ${CORE_OK}`,
        coreBefore: '(core module $envm (func (export "abort"))) (core instance $env (instantiate $envm))',
        coreWith: '(with "env" (instance $env))',
      }),
      'disallowed-import',
      /"env"\."abort"/,
    );
  });

  it('an imported memory in the core module', async () => {
    await expectRejected(
      await handMade({
        coreModule: `(import "mem" "memory" (memory 1)) (export "memory" (memory 0)) (func (export "evaluate") (param i32 i32 i32 i32 i64) (result i32) (i32.const 0))`,
        coreBefore: '(core module $memm (memory (export "memory") 1)) (core instance $mem (instantiate $memm))',
        coreWith: '(with "mem" (instance $mem))',
      }),
      'disallowed-import',
      /imports a memory "mem"\."memory"/,
    );
  });
});

describe('exports and types', () => {
  it('no evaluate export', async () => {
    const wit = POLICY_WIT.replace(/export evaluate: func\(req: request\) -> decision;/, '');
    const core = coreFromWat('(module (memory (export "memory") 1))');
    await expectRejected(await componentFromCore(core, { wit }), 'invalid-module', /does not export "evaluate"/);
  });

  it('evaluate with the wrong core signature', async () => {
    await expectRejected(
      await handMade({
        coreModule:
          '(memory (export "memory") 1) (func (export "evaluate") (param i32 i32 i32 i32 i32) (result i32) (i32.const 0))',
      }),
      'invalid-module',
      /"evaluate" has signature \(i32, i32, i32, i32, i32\) -> \(i32\); the contract needs \(i32, i32, i32, i32, i64\) -> \(i32\)/,
    );
  });

  it('request redefined under the same name with fields swapped (same core signature)', async () => {
    const wit = POLICY_WIT.replace(
      'requester-pid: u32,\n    requester-uid: u32,',
      'requester-uid: u32,\n    requester-pid: u32,',
    );
    expect(wit).not.toBe(POLICY_WIT);
    await expectRejected(
      await componentFromWat(policyWat(), { wit }),
      'invalid-module',
      /request.*field 1 should be "requester-pid", found "requester-uid"/,
    );
  });

  it('request redefined in the world itself with a different field type', async () => {
    const wit = POLICY_WIT.replace(
      /world policy \{[\s\S]*\n\}/,
      `world policy {
  import host;
  use types.{decision};
  record request { operation: u32, requester-pid: u32, requester-uid: u32, target-pid: u32, bytes: u64 }
  export evaluate: func(req: request) -> decision;
}`,
    );
    await expectRejected(
      await componentFromWat(policyWat(), { wit }),
      'invalid-module',
      /evaluate.*operation: expected enum \{ set-memlock \}, found u32/,
    );
  });

  it('a wrong evaluate type disguised by an export type ascription', async () => {
    const lie = {
      coreModule: CORE_OK,
      evaluateType: `(type $own-request (record (field "operation" u32) (field "requester-pid" u32) (field "requester-uid" u32) (field "target-pid" u32) (field "bytes" u64)))
        (type $evaluate-ty (func (param "req" $own-request) (result $decision)))
        (type $contract-ty (func (param "req" $request) (result $decision)))`,
    };
    await expectRejected(
      await handMade(lie),
      'invalid-module',
      /evaluate.*operation: expected enum \{ set-memlock \}, found u32/,
    );
    await expectRejected(
      await handMade({ ...lie, exportAscription: '(func (type $contract-ty))' }),
      'invalid-module',
      /export "evaluate" carries a type ascription that differs/,
    );
  });

  it('an extra export, named', async () => {
    const wit = POLICY_WIT.replace(
      'export evaluate: func(req: request) -> decision;',
      'export evaluate: func(req: request) -> decision;\n  export backdoor: func();',
    );
    const core = coreFromWat(policyWat({ extra: '(func (export "backdoor"))' }));
    await expectRejected(await componentFromCore(core, { wit }), 'invalid-module', /exports func "backdoor"/);
  });

  it('strings encoded as UTF-16', async () => {
    await expectRejected(
      await componentFromWat(policyWat(), { stringEncoding: 'utf16' }),
      'invalid-module',
      /string-encoding=utf16; capgate requires UTF-8/,
    );
  });

  it('a guest export in the engine namespace', async () => {
    await expectRejected(
      await handMade({ coreModule: `${CORE_OK} (global (export "__capgate_fuel") i64 (i64.const 99))` }),
      'invalid-module',
      /exports "__capgate_fuel"; names starting with __capgate_ are reserved/,
    );
  });

  it('two core modules that both qualify as the main module', async () => {
    await expectRejected(
      await handMade({ coreModule: CORE_OK, coreBefore: `(core module $twin ${CORE_OK})` }),
      'invalid-module',
      /2 core modules export "memory" and "evaluate"/,
    );
  });

  it('an instruction outside the supported feature set (atomics)', async () => {
    await expectRejected(
      await handMade({
        coreModule:
          '(memory (export "memory") 1 1 shared) (func (export "evaluate") (param i32 i32 i32 i32 i64) (result i32) (i32.atomic.load (i32.const 0)))',
      }),
      'invalid-module',
      /does not support|shared memory/,
    );
  });
});

describe('memory', () => {
  it('initial memory over limits.memoryPages', async () => {
    await expectRejected(
      await componentFromWat(policyWat({ memory: '(memory (export "memory") 200)' })),
      'memory-limit',
      /initial memory is 200 pages .*the limit is 160 pages/,
    );
  });
});
