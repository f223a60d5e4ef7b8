// Test-only host for ONE world: instantiates a policy core module with hand-written imports that
// follow the canonical-ABI layouts of capgate:policy@1.0.0, independent of runtime/engine, so the
// SDKs' glue is checked against the spec and not against another implementation of it.
import {
  CAPABILITY_ERRORS,
  LOG_LEVELS,
  OPERATIONS,
  type PolicyRequest,
  type VmIdentity,
} from '../../../runtime/contract/types.ts';
import type { Capabilities } from '../../../runtime/capabilities/capabilities.ts';
import type { CapabilityCall, LogLine } from '../../../runtime/engine/outcome.ts';

export interface CoreRun {
  decision: 'allow' | 'deny';
  reason: string;
  capabilityCalls: CapabilityCall[];
  logs: LogLine[];
}

interface PolicyExports {
  memory: WebAssembly.Memory;
  evaluate(op: number, requesterPid: number, requesterUid: number, targetPid: number, bytes: bigint): number;
  cabi_post_evaluate(retptr: number): void;
  cabi_realloc(oldPtr: number, oldSize: number, align: number, newSize: number): number;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export interface CoreInstance {
  /** One evaluation, including cabi_post_evaluate. `opOverride` sends a raw operation discriminant. */
  evaluate(request: PolicyRequest, caps: Capabilities, opOverride?: number): CoreRun;
  memory: WebAssembly.Memory;
}

/** A fresh instance per request, as the engine does it. */
export function runCore(
  module: WebAssembly.Module,
  request: PolicyRequest,
  caps: Capabilities,
  opOverride?: number,
): CoreRun {
  return instantiateCore(module).evaluate(request, caps, opOverride);
}

/** An instance that can evaluate repeatedly (to check the SDK frees what it allocates). */
export function instantiateCore(module: WebAssembly.Module): CoreInstance {
  let calls: CapabilityCall[] = [];
  let logs: LogLine[] = [];
  let caps: Capabilities | undefined;
  const current = (): Capabilities => {
    if (!caps) throw new Error('host import called outside evaluate');
    return caps;
  };
  let exports: PolicyExports | undefined;
  const guest = (): PolicyExports => {
    if (!exports) throw new Error('host import called before instantiation finished');
    return exports;
  };
  const view = (): DataView => new DataView(guest().memory.buffer);
  const inBounds = (ptr: number, len: number): void => {
    if (ptr < 0 || len < 0 || ptr + len > guest().memory.buffer.byteLength)
      throw new Error(`guest pointer out of bounds: ${ptr}+${len}`);
  };
  const readString = (ptr: number, len: number): string => {
    inBounds(ptr, len);
    return fromUtf8.decode(new Uint8Array(guest().memory.buffer, ptr, len));
  };
  // Canonical ABI store_string: realloc(0, 0, 1, len), then copy; returns (ptr, len).
  const lowerString = (s: string): [number, number] => {
    const bytes = utf8.encode(s);
    const ptr = guest().cabi_realloc(0, 0, 1, bytes.length);
    inBounds(ptr, bytes.length);
    new Uint8Array(guest().memory.buffer, ptr, bytes.length).set(bytes);
    return [ptr, bytes.length];
  };
  const lowerIdentity = (vm: VmIdentity, retptr: number): void => {
    const [uuidPtr, uuidLen] = lowerString(vm.uuid);
    const [namePtr, nameLen] = lowerString(vm.name);
    const list = guest().cabi_realloc(0, 0, 4, vm.labels.length * 16);
    inBounds(list, vm.labels.length * 16);
    vm.labels.forEach(([k, v], i) => {
      const [kp, kl] = lowerString(k);
      const [vp, vl] = lowerString(v);
      const d = view();
      d.setUint32(list + i * 16, kp, true);
      d.setUint32(list + i * 16 + 4, kl, true);
      d.setUint32(list + i * 16 + 8, vp, true);
      d.setUint32(list + i * 16 + 12, vl, true);
    });
    inBounds(retptr, 32);
    const d = view();
    d.setUint8(retptr, 1);
    d.setUint32(retptr + 4, uuidPtr, true);
    d.setUint32(retptr + 8, uuidLen, true);
    d.setUint32(retptr + 12, namePtr, true);
    d.setUint32(retptr + 16, nameLen, true);
    d.setInt32(retptr + 20, vm.id, true);
    d.setUint32(retptr + 24, list, true);
    d.setUint32(retptr + 28, vm.labels.length, true);
  };

  const host = {
    'set-memlock': (pid: number, bytes: bigint, retptr: number): void => {
      const p = pid >>> 0;
      const b = BigInt.asUintN(64, bytes);
      const r = current().setMemlock(p, b);
      calls.push({ op: 'set-memlock', pid: p, bytes: b, result: r.ok ? 'ok' : r.error });
      inBounds(retptr, 2);
      view().setUint8(retptr, r.ok ? 0 : 1);
      view().setUint8(retptr + 1, r.ok ? 0 : CAPABILITY_ERRORS.indexOf(r.error));
    },
    'query-vm-identity': (pid: number, retptr: number): void => {
      const p = pid >>> 0;
      const vm = current().queryVmIdentity(p);
      calls.push(
        vm
          ? { op: 'query-vm-identity', pid: p, result: 'some', vmUuid: vm.uuid }
          : { op: 'query-vm-identity', pid: p, result: 'none' },
      );
      if (vm) lowerIdentity(vm, retptr);
      else {
        inBounds(retptr, 1);
        view().setUint8(retptr, 0);
      }
    },
    log: (level: number, ptr: number, len: number): void => {
      const name = LOG_LEVELS[level];
      if (name === undefined) throw new Error(`bad log level ${level}`);
      logs.push({ level: name, message: readString(ptr >>> 0, len >>> 0) });
    },
  };

  const instance = new WebAssembly.Instance(module, { 'capgate:policy/host@1.0.0': host });
  exports = instance.exports as unknown as PolicyExports;
  return {
    memory: guest().memory,
    evaluate(request: PolicyRequest, capabilities: Capabilities, opOverride?: number): CoreRun {
      calls = [];
      logs = [];
      caps = capabilities;
      const op = opOverride ?? OPERATIONS.indexOf(request.operation);
      const retptr = guest().evaluate(
        op,
        request.requesterPid | 0,
        request.requesterUid | 0,
        request.targetPid | 0,
        BigInt.asIntN(64, request.bytes),
      );
      inBounds(retptr, 12);
      const disc = view().getUint8(retptr);
      let result: CoreRun;
      if (disc === 0) result = { decision: 'allow', reason: '', capabilityCalls: calls, logs };
      else if (disc === 1) {
        result = {
          decision: 'deny',
          reason: readString(view().getUint32(retptr + 4, true), view().getUint32(retptr + 8, true)),
          capabilityCalls: calls,
          logs,
        };
      } else throw new Error(`bad decision discriminant ${disc}`);
      guest().cabi_post_evaluate(retptr);
      caps = undefined;
      return result;
    },
  };
}
