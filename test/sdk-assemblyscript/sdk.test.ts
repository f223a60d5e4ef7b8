// The AssemblyScript SDK itself: ABI surface, UTF-8 <-> UTF-16 at the boundary, the request
// fields, label lookup, error names, arena reset, and the unregistered-policy guard.
// The probe policies are compiled from source here, with the same flags as the examples.
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { REPO_ROOT, compileAssemblyScript } from '../../scripts/build-guests.ts';
import { createSimulatedCapabilities } from '../../runtime/capabilities/simulated/capabilities.ts';
import { CAPABILITY_ERRORS, HOST_INTERFACE, MEMLOCK_UNLIMITED } from '../../runtime/contract/types.ts';
import { CoreHarness } from './core-harness.ts';
import { AS_EXAMPLES, FOREIGN, REQUESTER, TARGET, coreModule, failingSetMemlock, world } from './fixtures.ts';

const PROBE_DIR = join(REPO_ROOT, 'test', 'sdk-assemblyscript', 'probe');
const SDK = '../../../../host-api/assemblyscript'; // from test/sdk-assemblyscript/probe/<name>/

// Echoes everything it receives through log lines, so the test sees what the SDK decoded.
const PROBE_SOURCE = `
import { Decision, Request, LogLevel, CapabilityError, MEMLOCK_UNLIMITED,
  allow, deny, log, policy, queryVmIdentity, setMemlock, capabilityErrorName } from "${SDK}/index";
export * from "${SDK}/abi";

function decide(req: Request): Decision {
  log(LogLevel.Debug, "req " + (<i32>req.operation).toString() + " " + req.requesterPid.toString() + " " +
    req.requesterUid.toString() + " " + req.targetPid.toString() + " " + req.bytes.toString());
  if (req.bytes == 1) {
    const e = setMemlock(req.targetPid, MEMLOCK_UNLIMITED);
    return deny(capabilityErrorName(e) + (e == CapabilityError.None ? "" : "!"));
  }
  const vm = queryVmIdentity(req.targetPid);
  if (vm === null) return deny("no vm");
  log(LogLevel.Info, vm.uuid);
  log(LogLevel.Warn, vm.name);
  log(LogLevel.Error, vm.id.toString() + " " + vm.labels.length.toString());
  for (let i = 0; i < vm.labels.length; i++) log(LogLevel.Debug, vm.labels[i].key + "=" + vm.labels[i].value);
  if (req.bytes == 0) return allow();
  const v = vm.label("ключ");
  return deny(v === null ? "no ключ" : "ключ=" + v);
}
policy(decide);
`;

const UNREGISTERED_SOURCE = `
import { Decision, Request, allow } from "${SDK}/index";
export * from "${SDK}/abi";
export function decide(req: Request): Decision { return allow(); }
`;

// Module-scope objects live on the heap too (allocated by the start function).
const MODULE_SCOPE_SOURCE = `
import { Decision, Request, deny, policy, queryVmIdentity } from "${SDK}/index";
export * from "${SDK}/abi";
const NAMES: string[] = ["alpha", "beta", "gamma"];
const SUFFIX = "-" + NAMES.length.toString();
function decide(req: Request): Decision {
  const vm = queryVmIdentity(req.targetPid);
  return deny(NAMES.join("+") + SUFFIX + (vm === null ? "" : ":" + vm.name));
}
policy(decide);
`;

async function compileProbe(name: string, source: string): Promise<WebAssembly.Module> {
  const entry = join(PROBE_DIR, name, 'index.ts');
  return new WebAssembly.Module(await compileAssemblyScript(entry, { virtualFiles: { [entry]: source } }));
}

let probe: WebAssembly.Module;
beforeAll(async () => {
  probe = await compileProbe('echo', PROBE_SOURCE);
});

const LABELS: Array<[string, string]> = [
  ['vfio', 'true'],
  ['ключ', 'значение 🚀'],
  ['ключ', 'second (ignored: first match wins)'],
];
const req = (bytes: bigint, targetPid = TARGET) => ({
  operation: 'set-memlock' as const,
  requesterPid: REQUESTER,
  requesterUid: 4294967295,
  targetPid,
  bytes,
});

describe('AssemblyScript SDK', () => {
  it('the examples export exactly the ABI and import only the host interface', () => {
    for (const name of AS_EXAMPLES) {
      const m = coreModule(name);
      expect(
        WebAssembly.Module.exports(m)
          .map((e) => `${e.kind}:${e.name}`)
          .sort(),
      ).toEqual(['function:cabi_post_evaluate', 'function:cabi_realloc', 'function:evaluate', 'memory:memory']);
      for (const i of WebAssembly.Module.imports(m)) expect(i.module).toBe(HOST_INTERFACE);
    }
  });

  it('passes every request field through, u32 and u64 extremes included', async () => {
    const h = await CoreHarness.instantiate(probe, createSimulatedCapabilities(world([])));
    const r = h.evaluate({ ...req(MEMLOCK_UNLIMITED), requesterPid: 2147483648 });
    expect(r.logs[0]).toEqual({
      level: 'debug',
      message: `req 0 2147483648 4294967295 ${TARGET} 18446744073709551615`,
    });
  });

  it('decodes the VM identity (UTF-8 -> UTF-16) and encodes logs and reasons back (UTF-16 -> UTF-8)', async () => {
    const w = world(LABELS);
    w.vms[0]!.identity = { ...w.vms[0]!.identity, name: 'vm-ä-名前', id: -42 };
    const h = await CoreHarness.instantiate(probe, createSimulatedCapabilities(w));
    const r = h.evaluate(req(5n));
    expect(r.logs.slice(1)).toEqual([
      { level: 'info', message: 'c0ffee00-0000-4000-8000-000000000001' },
      { level: 'warn', message: 'vm-ä-名前' },
      { level: 'error', message: '-42 3' },
      { level: 'debug', message: 'vfio=true' },
      { level: 'debug', message: 'ключ=значение 🚀' },
      { level: 'debug', message: 'ключ=second (ignored: first match wins)' },
    ]);
    expect(r.decision).toEqual({ kind: 'deny', reason: 'ключ=значение 🚀' });
  });

  it('label(key) is null for a missing key; query-vm-identity none is null', async () => {
    const h = await CoreHarness.instantiate(probe, createSimulatedCapabilities(world([['a', 'b']])));
    expect(h.evaluate(req(5n)).decision).toEqual({ kind: 'deny', reason: 'no ключ' });
    expect(h.evaluate(req(5n, FOREIGN)).decision).toEqual({ kind: 'deny', reason: 'no vm' });
    expect(h.evaluate(req(0n)).decision).toEqual({ kind: 'allow' });
  });

  it('setMemlock returns None on success and each WIT error by name', async () => {
    const base = createSimulatedCapabilities(world([]));
    const h = await CoreHarness.instantiate(probe, base);
    const ok = h.evaluate(req(1n));
    expect(ok.decision).toEqual({ kind: 'deny', reason: 'none' });
    expect(ok.calls).toEqual([{ op: 'set-memlock', pid: TARGET, bytes: MEMLOCK_UNLIMITED, result: 'ok' }]);
    for (const error of CAPABILITY_ERRORS) {
      h.useCapabilities(failingSetMemlock(base, error));
      expect(h.evaluate(req(1n)).decision).toEqual({ kind: 'deny', reason: `${error}!` });
    }
  });

  it('handles labels larger than the initial memory (cabi_realloc grows memory)', async () => {
    const big: Array<[string, string]> = Array.from({ length: 300 }, (_, i) => [`k${i}`, 'v'.repeat(1000)]);
    const h = await CoreHarness.instantiate(probe, createSimulatedCapabilities(world([...big, ['ключ', 'x']])));
    const pagesBefore = h.memory.buffer.byteLength / 65536;
    const r = h.evaluate(req(5n));
    expect(r.decision).toEqual({ kind: 'deny', reason: 'ключ=x' });
    expect(r.logs).toHaveLength(1 + 3 + 301);
    expect(h.memory.buffer.byteLength / 65536).toBeGreaterThan(pagesBefore);
  });

  it('cabi_post_evaluate rewinds the arena: a reused instance allocates at the same place', async () => {
    const h = await CoreHarness.instantiate(probe, createSimulatedCapabilities(world(LABELS)));
    const first = h.evaluate(req(5n));
    const size = h.memory.buffer.byteLength;
    for (let i = 0; i < 200; i++) {
      const again = h.evaluate(req(5n));
      expect(again.decision).toEqual(first.decision);
      expect(again.denyPtr).toBe(first.denyPtr);
    }
    expect(h.memory.buffer.byteLength).toBe(size);
  });

  it('the arena rewind keeps what the start function allocated (module-scope constants)', async () => {
    const m = await compileProbe('module-scope', MODULE_SCOPE_SOURCE);
    const big: Array<[string, string]> = Array.from({ length: 20 }, (_, i) => [`k${i}`, 'v'.repeat(200)]);
    const h = await CoreHarness.instantiate(m, createSimulatedCapabilities(world(big)));
    for (let i = 0; i < 50; i++) {
      expect(h.evaluate(req(5n)).decision).toEqual({ kind: 'deny', reason: 'alpha+beta+gamma-3:vm-a' });
    }
  });

  it('an entry file that never calls policy(decide) denies with a reason saying so', async () => {
    const m = await compileProbe('unregistered', UNREGISTERED_SOURCE);
    const h = await CoreHarness.instantiate(m, createSimulatedCapabilities(world([])));
    const r = h.evaluate(req(5n));
    expect(r.decision).toEqual({ kind: 'deny', reason: 'policy-not-registered: call policy(decide) at module scope' });
    expect(r.calls).toEqual([]);
  });
});
