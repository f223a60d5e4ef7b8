// The capgate:policy@1.0.0 contract as a structural description (host-api/wit/policy.wit).
// A test builds a component from the WIT file and checks it matches this description, so the
// two cannot drift apart.
import { CAPABILITY_ERRORS, HOST_INTERFACE, LOG_LEVELS, OPERATIONS, TYPES_INTERFACE } from '../../contract/types.ts';
import type { FuncType, ValType } from './types.ts';

const prim = (p: 'u32' | 'u64' | 's32' | 'string'): ValType => ({ kind: 'prim', prim: p });
const str = prim('string');

export const OPERATION_TYPE: ValType = { kind: 'enum', names: [...OPERATIONS] };
export const CAPABILITY_ERROR_TYPE: ValType = { kind: 'enum', names: [...CAPABILITY_ERRORS] };
export const LOG_LEVEL_TYPE: ValType = { kind: 'enum', names: [...LOG_LEVELS] };

export const VM_IDENTITY_TYPE: ValType = {
  kind: 'record',
  fields: [
    { name: 'uuid', type: str },
    { name: 'name', type: str },
    { name: 'id', type: prim('s32') },
    { name: 'labels', type: { kind: 'list', element: { kind: 'tuple', elements: [str, str] } } },
  ],
};

export const REQUEST_TYPE: ValType = {
  kind: 'record',
  fields: [
    { name: 'operation', type: OPERATION_TYPE },
    { name: 'requester-pid', type: prim('u32') },
    { name: 'requester-uid', type: prim('u32') },
    { name: 'target-pid', type: prim('u32') },
    { name: 'bytes', type: prim('u64') },
  ],
};

export const DECISION_TYPE: ValType = {
  kind: 'variant',
  cases: [
    { name: 'allow', type: null },
    { name: 'deny', type: str },
  ],
};

/** Types the `types` interface may export (a subset is fine). */
export const CONTRACT_TYPES: ReadonlyMap<string, ValType> = new Map<string, ValType>([
  ['operation', OPERATION_TYPE],
  ['vm-identity', VM_IDENTITY_TYPE],
  ['request', REQUEST_TYPE],
  ['decision', DECISION_TYPE],
  ['capability-error', CAPABILITY_ERROR_TYPE],
  ['log-level', LOG_LEVEL_TYPE],
]);

/** Functions of the `host` interface (a policy may import any subset). */
export const HOST_FUNCTIONS: ReadonlyMap<string, FuncType> = new Map<string, FuncType>([
  [
    'set-memlock',
    {
      params: [
        { name: 'pid', type: prim('u32') },
        { name: 'bytes', type: prim('u64') },
      ],
      result: { kind: 'result', ok: null, err: CAPABILITY_ERROR_TYPE },
    },
  ],
  [
    'query-vm-identity',
    { params: [{ name: 'pid', type: prim('u32') }], result: { kind: 'option', inner: VM_IDENTITY_TYPE } },
  ],
  [
    'log',
    {
      params: [
        { name: 'level', type: LOG_LEVEL_TYPE },
        { name: 'message', type: str },
      ],
      result: null,
    },
  ],
]);

export const EVALUATE_TYPE: FuncType = { params: [{ name: 'req', type: REQUEST_TYPE }], result: DECISION_TYPE };

/** Host types `host` re-exports through `use types.{...}`. */
export const HOST_TYPE_EXPORTS: ReadonlyMap<string, ValType> = new Map<string, ValType>([
  ['vm-identity', VM_IDENTITY_TYPE],
  ['capability-error', CAPABILITY_ERROR_TYPE],
  ['log-level', LOG_LEVEL_TYPE],
]);

export const CONTRACT_INSTANCES = { host: HOST_INTERFACE, types: TYPES_INTERFACE } as const;
export const CONTRACT_EXPORT = 'evaluate';
