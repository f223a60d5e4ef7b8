// The structural contract description (runtime/engine/component/contract.ts) must say exactly
// what host-api/wit/policy.wit says. wit-component's "dummy" module imports and exports
// everything in the world, so the component built from the WIT carries every type and function.
import { componentEmbed, componentNew } from '@bytecodealliance/jco-transpile/wasm-tools';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CONTRACT_TYPES,
  EVALUATE_TYPE,
  HOST_FUNCTIONS,
  HOST_TYPE_EXPORTS,
} from '../../../runtime/engine/component/contract.ts';
import { matchFuncType, matchValType } from '../../../runtime/engine/component/match.ts';
import { parseComponent } from '../../../runtime/engine/component/parse.ts';
import { validateComponent } from '../../../runtime/engine/component/validate.ts';
import type { ComponentSummary } from '../../../runtime/engine/component/parse.ts';
import type { InstanceShape } from '../../../runtime/engine/component/types.ts';
import { HOST_INTERFACE, TYPES_INTERFACE } from '../../../runtime/contract/types.ts';
import { POLICY_WIT } from '../../support/components.ts';

let summary: ComponentSummary;

function instance(name: string): InstanceShape {
  const imp = summary.imports.find((i) => i.name === name);
  if (imp?.extern.sort !== 'instance') throw new Error(`the WIT-built component has no instance import ${name}`);
  return imp.extern.exports;
}

beforeAll(async () => {
  summary = parseComponent(
    await componentNew(await componentEmbed({ dummy: true, witSource: POLICY_WIT, world: 'policy' })),
  );
});

describe('contract description vs host-api/wit/policy.wit', () => {
  it('types interface: same type names, same shapes', () => {
    const types = instance(TYPES_INTERFACE);
    expect([...types.keys()].sort()).toEqual([...CONTRACT_TYPES.keys()].sort());
    for (const [name, ext] of types) {
      expect(ext.sort).toBe('type');
      if (ext.sort !== 'type' || ext.type.kind !== 'value') throw new Error(`${name} is not a value type`);
      expect(matchValType(CONTRACT_TYPES.get(name)!, ext.type.type, name)).toBeNull();
    }
  });

  it('host interface: same functions with the same types, same re-exported types', () => {
    const host = instance(HOST_INTERFACE);
    const funcs = [...host].filter(([, e]) => e.sort === 'func');
    const types = [...host].filter(([, e]) => e.sort === 'type');
    expect(funcs.map(([n]) => n).sort()).toEqual([...HOST_FUNCTIONS.keys()].sort());
    expect(types.map(([n]) => n).sort()).toEqual([...HOST_TYPE_EXPORTS.keys()].sort());
    for (const [name, ext] of funcs) {
      if (ext.sort !== 'func') throw new Error('unreachable');
      expect(matchFuncType(HOST_FUNCTIONS.get(name)!, ext.type, name)).toBeNull();
    }
  });

  it('world: exports exactly evaluate with the contract type, and passes validation', () => {
    expect(summary.exports.map((e) => e.name)).toEqual(['evaluate']);
    const ev = summary.exports[0]!.extern;
    if (ev.sort !== 'func') throw new Error('evaluate is not a function');
    expect(matchFuncType(EVALUATE_TYPE, ev.type, 'evaluate')).toBeNull();
    expect(validateComponent(summary)).toEqual({
      imports: [TYPES_INTERFACE, HOST_INTERFACE],
      exports: ['evaluate'],
      hostFunctions: ['set-memlock', 'query-vm-identity', 'log'],
    });
  });

  it('the matcher notices a changed field (so the checks above are not vacuous)', () => {
    const request = CONTRACT_TYPES.get('request')!;
    if (request.kind !== 'record') throw new Error('request is a record');
    const swapped = {
      ...request,
      fields: [request.fields[0]!, request.fields[2]!, request.fields[1]!, ...request.fields.slice(3)],
    };
    expect(matchValType(request, swapped, 'request')).toMatch(
      /field 1 should be "requester-pid", found "requester-uid"/,
    );
  });
});
