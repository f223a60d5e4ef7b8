// Hostile uploads whose cost is paid at every instantiation (tables, element and data segments,
// globals) or at compile time (functions, code, types): each is refused at upload with an error
// that names the limit and the value found, before anything is instrumented or compiled.
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../runtime/engine/compile.ts';
import { describeValType, type ValType } from '../../../runtime/engine/component/types.ts';
import { DEFAULT_LIMITS, type EngineLimits } from '../../../runtime/engine/limits.ts';
import { componentFromWat, policyWat } from '../../support/components.ts';
import { CORE_OK, handMade } from './hand-made.ts';

async function refused(bytes: Uint8Array, message: RegExp, limits: EngineLimits = DEFAULT_LIMITS): Promise<string> {
  const r = await compilePolicy(bytes, limits);
  if (r.ok) throw new Error('the policy was accepted');
  expect(r.kind).toBe('invalid-module');
  expect(r.message).toMatch(message);
  expect(r.message.length).toBeLessThanOrEqual(1100);
  return r.message;
}

const withExtra = (extra: string, memory?: string): Promise<Uint8Array> =>
  componentFromWat(policyWat({ extra, ...(memory ? { memory } : {}) }));

describe('instantiation bombs are refused at upload', () => {
  it('a table of 10M entries (2.8 KB of component)', async () => {
    await refused(
      await withExtra('(table 10000000 funcref)'),
      /table of 10000000 entries; the limit is 10000 \(limits\.maxTableEntries\)/,
    );
  });

  it('a table whose declared maximum is 20M entries', async () => {
    await refused(
      await withExtra('(table 1 20000000 funcref)'),
      /maximum of 20000000 entries; the limit is 10000 \(limits\.maxTableEntries\)/,
    );
  });

  it('an element segment of 200,000 entries', async () => {
    const entries = Array.from({ length: 200_000 }, () => '$nop').join(' ');
    await refused(
      await withExtra(`(func $nop) (table 10 funcref) (elem (i32.const 0) ${entries})`),
      /200000 element entries; the limit is 10000 \(limits\.maxElementEntries\)/,
    );
  });

  it('2 MiB of data segments', async () => {
    await refused(
      await withExtra(`(data (i32.const 0) "${'x'.repeat(2 * 1024 * 1024)}")`, '(memory (export "memory") 40)'),
      /2097152 bytes of data segments; the limit is 1048576 \(limits\.maxDataBytes\)/,
    );
  });

  it('2,000 data segments of one byte', async () => {
    const segments = Array.from({ length: 2000 }, (_, i) => `(data (i32.const ${i}) "x")`).join(' ');
    await refused(
      await withExtra(segments),
      /2000 data and element segments; the limit is 1000 \(limits\.maxSegments\)/,
    );
  });

  it('5,000 globals', async () => {
    const globals = Array.from({ length: 5000 }, () => '(global i32 (i32.const 0))').join(' ');
    await refused(await withExtra(globals), /5000 globals; the limit is 1000 \(limits\.maxGlobals\)/);
  });
});

describe('compile-time bombs are refused at upload', () => {
  it('20,000 functions', async () => {
    const funcs = Array.from({ length: 20_000 }, (_, i) => `(func $f${i} (result i32) (i32.const ${i}))`).join(' ');
    await refused(await withExtra(funcs), /200\d\d functions; the limit is 10000 \(limits\.maxFunctions\)/);
  });

  it('a code section over the limit', async () => {
    const bytes = await withExtra('(func $big (result i32) (i32.add (i32.const 1) (i32.const 2)))');
    await refused(bytes, /code section of \d+ bytes; the limit is 16 \(limits\.maxCodeBytes\)/, {
      ...DEFAULT_LIMITS,
      maxCodeBytes: 16,
    });
  });

  /** An instance type export of a tuple `width` wide, nested `depth` deep (a DAG: 20-ish bytes a level). */
  function nestedTuple(width: number, depth: number): string {
    const levels = [`(type (;0;) (tuple ${Array.from({ length: width }, () => 'u8').join(' ')}))`];
    for (let d = 1; d < depth; d++)
      levels.push(`(type (;${d};) (tuple ${Array.from({ length: width }, () => String(d - 1)).join(' ')}))`);
    return levels.join('\n');
  }

  it('an imported type 70 wide, nested 3 deep, in place of a contract type', async () => {
    const componentImports = `(import "capgate:policy/host@1.0.0" (instance
      ${nestedTuple(70, 3)}
      (export "log-level" (type (eq 2)))))`;
    await refused(
      await handMade({ coreModule: CORE_OK, componentImports }),
      /tuple type of 70 elements; the limit is 64 \(limits\.maxTypeWidth\)/,
    );
  });

  it('an imported type nested 40 deep', async () => {
    const componentImports = `(import "capgate:policy/host@1.0.0" (instance
      ${nestedTuple(2, 40)}
      (export "log-level" (type (eq 39)))))`;
    await refused(
      await handMade({ coreModule: CORE_OK, componentImports }),
      /nested \d+ deep; the limit is 16 \(limits\.maxTypeDepth\)/,
    );
  });

  it('the mismatch message of a wide type within the limits is still bounded', async () => {
    // Width 60 (allowed), nested 5 deep: 60^5 leaves if described in full.
    const componentImports = `(import "capgate:policy/host@1.0.0" (instance
      ${nestedTuple(60, 5)}
      (export "log-level" (type (eq 4)))))`;
    await refused(
      await handMade({ coreModule: CORE_OK, componentImports }),
      /type "log-level" from capgate:policy\/host@1\.0\.0 does not match the contract/,
    );
  });
});

describe('error-message builders are bounded', () => {
  it('describing a 20-wide type nested 5 deep stays under 1 KB', () => {
    let t: ValType = { kind: 'prim', prim: 'u8' };
    for (let d = 0; d < 5; d++) t = { kind: 'tuple', elements: Array.from({ length: 20 }, () => t) };
    const text = describeValType(t);
    expect(text.length).toBeLessThanOrEqual(1024);
    expect(text).toMatch(/^tuple<tuple<tuple</);
    expect(text).toMatch(/\.\.\.$/);
  });
});

describe('legitimate policies stay within the limits', () => {
  it('the contract-shaped test policy compiles', async () => {
    const r = await compilePolicy(
      await withExtra('(table 4 funcref) (func $a) (elem (i32.const 0) $a $a)'),
      DEFAULT_LIMITS,
    );
    expect(r.ok ? 'ok' : r.message).toBe('ok');
  });
});
