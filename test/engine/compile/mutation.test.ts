// Corrupted uploads never crash the pipeline: every byte-level mutant of a valid component
// yields a CompileResult (accepted or refused with a kind and a message), never an exception.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../runtime/engine/compile.ts';
import { instrumentCoreModule } from '../../../runtime/engine/instrument/instrument.ts';
import { DEFAULT_LIMITS } from '../../../runtime/engine/limits.ts';
import { componentFromWat, coreFromWat, policyWat } from '../../support/components.ts';

function prng(seed: string): () => number {
  let block = createHash('sha256').update(seed).digest();
  let i = 0;
  return () => {
    if (i + 4 > block.length) {
      block = createHash('sha256').update(block).digest();
      i = 0;
    }
    const v = block.readUInt32LE(i);
    i += 4;
    return v;
  };
}

const WAT = policyWat({
  evaluateBody:
    '(local $i i32) (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 10)))) (i32.const 1024)',
});

describe('robustness', () => {
  it('byte-level mutants of a valid component are answered, never thrown', async () => {
    const original = await componentFromWat(WAT);
    const next = prng('mutants');
    const kinds = new Map<string, number>();
    for (let n = 0; n < 150; n++) {
      const bytes = original.slice();
      for (let k = 1 + (next() % 3); k > 0; k--) bytes[8 + (next() % (bytes.length - 8))] = next() & 0xff;
      const r = await compilePolicy(bytes, DEFAULT_LIMITS);
      const key = r.ok ? 'ok' : r.kind;
      kinds.set(key, (kinds.get(key) ?? 0) + 1);
      if (!r.ok) expect(r.message.length).toBeGreaterThan(10);
    }
    // The mutants really exercised the refusal paths.
    expect(kinds.get('invalid-module') ?? 0).toBeGreaterThan(10);
  });

  it('instrumentation is byte-for-byte deterministic', () => {
    const core = coreFromWat(WAT);
    const a = instrumentCoreModule(core, { fuel: 12345, memoryPages: 7 });
    const b = instrumentCoreModule(core, { fuel: 12345, memoryPages: 7 });
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    expect(a.memoryMaxPages).toBe(7);
  });
});
