// Test-only host for a policy core module: the contract's canonical-ABI layouts written by hand
// (host-api/README.md), over a plain WebAssembly.Instance, backed by a Capabilities object.
// It exists to test the SDK and the examples without the engine; it does no fuel or bounds policing.
import type { Capabilities } from '../../runtime/capabilities/capabilities.ts';
import {
  CAPABILITY_ERRORS,
  HOST_INTERFACE,
  LOG_LEVELS,
  OPERATIONS,
  type PolicyDecision,
  type PolicyRequest,
} from '../../runtime/contract/types.ts';
import type { CapabilityCall, LogLine } from '../../runtime/engine/outcome.ts';

export interface PolicyExports {
  memory: WebAssembly.Memory;
  evaluate(op: number, requesterPid: number, requesterUid: number, targetPid: number, bytes: bigint): number;
  cabi_post_evaluate(retptr: number): void;
  cabi_realloc(oldPtr: number, oldSize: number, align: number, newSize: number): number;
}

export interface HarnessRun {
  decision: PolicyDecision;
  calls: CapabilityCall[];
  logs: LogLine[];
  /** Where the decision was returned (for arena checks). */
  retptr: number;
  denyPtr?: number;
}

/** A request where `operation` may also be a raw index (to reach the guest's unknown-op path). */
export type HarnessRequest = Omit<PolicyRequest, 'operation'> & { operation: PolicyRequest['operation'] | number };

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export class CoreHarness {
  private exports!: PolicyExports;
  private calls: CapabilityCall[] = [];
  private logs: LogLine[] = [];

  private constructor(private capabilities: Capabilities) {}

  /** Instantiates (runs the start function) with host imports backed by `capabilities`. */
  static async instantiate(module: WebAssembly.Module, capabilities: Capabilities): Promise<CoreHarness> {
    const h = new CoreHarness(capabilities);
    const instance = await WebAssembly.instantiate(module, { [HOST_INTERFACE]: h.imports() });
    h.exports = instance.exports as unknown as PolicyExports;
    return h;
  }

  get memory(): WebAssembly.Memory {
    return this.exports.memory;
  }

  /** Swaps the capabilities answering host calls (same instance). */
  useCapabilities(capabilities: Capabilities): void {
    this.capabilities = capabilities;
  }

  evaluate(req: HarnessRequest): HarnessRun {
    this.calls = [];
    this.logs = [];
    const op = typeof req.operation === 'number' ? req.operation : OPERATIONS.indexOf(req.operation);
    const retptr = this.exports.evaluate(
      op,
      req.requesterPid,
      req.requesterUid,
      req.targetPid,
      BigInt.asIntN(64, req.bytes),
    );
    const view = new DataView(this.memory.buffer);
    const disc = view.getUint8(retptr);
    let decision: PolicyDecision;
    let denyPtr: number | undefined;
    if (disc === 0) decision = { kind: 'allow' };
    else if (disc === 1) {
      denyPtr = view.getUint32(retptr + 4, true);
      decision = { kind: 'deny', reason: this.readString(denyPtr, view.getUint32(retptr + 8, true)) };
    } else throw new Error(`bad decision discriminant ${disc}`);
    this.exports.cabi_post_evaluate(retptr);
    return { decision, calls: this.calls, logs: this.logs, retptr, denyPtr };
  }

  private readString(ptr: number, len: number): string {
    return strictUtf8.decode(new Uint8Array(this.memory.buffer, ptr, len));
  }

  /** Lowers a string into guest memory through cabi_realloc; returns [ptr, len]. */
  private lowerString(s: string): [number, number] {
    const bytes = utf8.encode(s);
    const ptr = this.exports.cabi_realloc(0, 0, 1, bytes.length);
    new Uint8Array(this.memory.buffer, ptr, bytes.length).set(bytes);
    return [ptr, bytes.length];
  }

  private imports(): Record<string, (...args: never[]) => void> {
    return {
      'set-memlock': (pid: number, bytes: bigint, retptr: number): void => {
        const p = pid >>> 0;
        const b = BigInt.asUintN(64, bytes);
        const r = this.capabilities.setMemlock(p, b);
        this.calls.push({ op: 'set-memlock', pid: p, bytes: b, result: r.ok ? 'ok' : r.error });
        const view = new DataView(this.memory.buffer);
        view.setUint8(retptr, r.ok ? 0 : 1);
        view.setUint8(retptr + 1, r.ok ? 0 : CAPABILITY_ERRORS.indexOf(r.error));
      },
      'query-vm-identity': (pid: number, retptr: number): void => {
        const p = pid >>> 0;
        const vm = this.capabilities.queryVmIdentity(p);
        this.calls.push(
          vm
            ? { op: 'query-vm-identity', pid: p, result: 'some', vmUuid: vm.uuid }
            : { op: 'query-vm-identity', pid: p, result: 'none' },
        );
        if (!vm) {
          new DataView(this.memory.buffer).setUint8(retptr, 0);
          return;
        }
        // Lower everything first: cabi_realloc may grow memory and detach earlier views.
        const uuid = this.lowerString(vm.uuid);
        const name = this.lowerString(vm.name);
        const labels = vm.labels.map(([k, v]) => [...this.lowerString(k), ...this.lowerString(v)]);
        const list = this.exports.cabi_realloc(0, 0, 4, 16 * labels.length);
        const view = new DataView(this.memory.buffer);
        for (const [i, words] of labels.entries()) {
          for (const [j, w] of words.entries()) view.setUint32(list + 16 * i + 4 * j, w, true);
        }
        view.setUint8(retptr, 1);
        view.setUint32(retptr + 4, uuid[0], true);
        view.setUint32(retptr + 8, uuid[1], true);
        view.setUint32(retptr + 12, name[0], true);
        view.setUint32(retptr + 16, name[1], true);
        view.setInt32(retptr + 20, vm.id, true);
        view.setUint32(retptr + 24, list, true);
        view.setUint32(retptr + 28, labels.length, true);
      },
      log: (level: number, ptr: number, len: number): void => {
        const l = LOG_LEVELS[level];
        if (l === undefined) throw new Error(`bad log level ${level}`);
        this.logs.push({ level: l, message: this.readString(ptr, len) });
      },
    };
  }
}
