// Structural comparison of component types. Returns null when equal, otherwise a short
// description of the first difference with its path ("req.bytes: expected u64, found u32").
import { describeValType } from './types.ts';
import type { FuncType, ValType } from './types.ts';
import { quoteName } from './quote.ts';

export function matchValType(expected: ValType | null, actual: ValType | null, path: string): string | null {
  if (expected === null || actual === null) {
    return expected === actual
      ? null
      : `${path}: expected ${describeValType(expected)}, found ${describeValType(actual)}`;
  }
  const mismatch = (): string => `${path}: expected ${describeValType(expected)}, found ${describeValType(actual)}`;
  if (expected.kind !== actual.kind) return mismatch();
  switch (expected.kind) {
    case 'prim':
      return actual.kind === 'prim' && actual.prim === expected.prim ? null : mismatch();
    case 'record': {
      if (actual.kind !== 'record' || actual.fields.length !== expected.fields.length) return mismatch();
      for (let i = 0; i < expected.fields.length; i++) {
        const e = expected.fields[i]!;
        const a = actual.fields[i]!;
        if (e.name !== a.name) return `${path}: field ${i} should be "${e.name}", found ${quoteName(a.name)}`;
        const m = matchValType(e.type, a.type, `${path}.${e.name}`);
        if (m) return m;
      }
      return null;
    }
    case 'variant': {
      if (actual.kind !== 'variant' || actual.cases.length !== expected.cases.length) return mismatch();
      for (let i = 0; i < expected.cases.length; i++) {
        const e = expected.cases[i]!;
        const a = actual.cases[i]!;
        if (e.name !== a.name) return `${path}: case ${i} should be "${e.name}", found ${quoteName(a.name)}`;
        const m = matchValType(e.type, a.type, `${path}.${e.name}`);
        if (m) return m;
      }
      return null;
    }
    case 'enum':
    case 'flags': {
      const a = actual as typeof expected;
      return a.names.length === expected.names.length && a.names.every((n, i) => n === expected.names[i])
        ? null
        : mismatch();
    }
    case 'list':
      return actual.kind === 'list' ? matchValType(expected.element, actual.element, `${path}[]`) : mismatch();
    case 'option':
      return actual.kind === 'option' ? matchValType(expected.inner, actual.inner, `${path}?`) : mismatch();
    case 'tuple': {
      if (actual.kind !== 'tuple' || actual.elements.length !== expected.elements.length) return mismatch();
      for (let i = 0; i < expected.elements.length; i++) {
        const m = matchValType(expected.elements[i]!, actual.elements[i]!, `${path}.${i}`);
        if (m) return m;
      }
      return null;
    }
    case 'result': {
      if (actual.kind !== 'result') return mismatch();
      return (
        matchValType(expected.ok, actual.ok, `${path}.ok`) ?? matchValType(expected.err, actual.err, `${path}.err`)
      );
    }
    case 'unsupported':
      return mismatch();
  }
}

export function matchFuncType(expected: FuncType, actual: FuncType, path: string): string | null {
  if (expected.params.length !== actual.params.length) {
    return `${path}: expected ${expected.params.length} parameter(s), found ${actual.params.length}`;
  }
  for (let i = 0; i < expected.params.length; i++) {
    const e = expected.params[i]!;
    const a = actual.params[i]!;
    if (e.name !== a.name) return `${path}: parameter ${i} should be named "${e.name}", found ${quoteName(a.name)}`;
    const m = matchValType(e.type, a.type, `${path}(${e.name})`);
    if (m) return m;
  }
  return matchValType(expected.result, actual.result, `${path} result`);
}
