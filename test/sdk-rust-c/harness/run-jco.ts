// Test-only reference path: the same component run through jco's transpiled glue (the canonical
// ABI as the Bytecode Alliance implements it), with the same capabilities, recording the same
// calls and logs as harness/run-core.ts, so the two can be compared.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { transpileBytes } from '@bytecodealliance/jco-transpile';
import type { CapabilityError, LogLevel, PolicyRequest, VmIdentity } from '../../../runtime/contract/types.ts';
import type { Capabilities } from '../../../runtime/capabilities/capabilities.ts';
import type { CapabilityCall, LogLine } from '../../../runtime/engine/outcome.ts';
import type { CoreRun } from './run-core.ts';

type JcoDecision = { tag: 'allow' } | { tag: 'deny'; val: string };
interface JcoHost {
  setMemlock(pid: number, bytes: bigint): { tag: 'ok' } | { tag: 'err'; val: CapabilityError };
  queryVmIdentity(pid: number): VmIdentity | undefined;
  log(level: LogLevel, message: string): void;
}
interface JcoModule {
  instantiate(
    getCoreModule: (name: string) => WebAssembly.Module,
    imports: Record<string, unknown>,
  ): { evaluate(req: PolicyRequest): JcoDecision };
}

export type JcoRunner = (request: PolicyRequest, caps: Capabilities) => CoreRun;

const runners = new Map<string, Promise<JcoRunner>>();

/** Transpiles once per component (cached by content); each call of the runner is a fresh instance. */
export function jcoRunner(component: Uint8Array): Promise<JcoRunner> {
  const key = createHash('sha256').update(component).digest('hex');
  let runner = runners.get(key);
  if (!runner) {
    runner = transpileRunner(component);
    runners.set(key, runner);
  }
  return runner;
}

async function transpileRunner(component: Uint8Array): Promise<JcoRunner> {
  const { files } = await transpileBytes(component, { name: 'policy', instantiation: 'sync' });
  const dir = mkdtempSync(join(tmpdir(), 'capgate-jco-'));
  let mod: JcoModule;
  try {
    const js = files['policy.js'];
    if (!js) throw new Error(`jco produced no policy.js (files: ${Object.keys(files).join(', ')})`);
    writeFileSync(join(dir, 'policy.mjs'), js);
    mod = (await import(pathToFileURL(join(dir, 'policy.mjs')).href)) as JcoModule;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const modules = new Map(
    Object.entries(files)
      .filter(([n]) => n.endsWith('.wasm'))
      .map(([n, b]) => [n, new WebAssembly.Module(b)]),
  );
  const getCoreModule = (name: string): WebAssembly.Module => {
    const m = modules.get(name);
    if (!m) throw new Error(`jco asked for unknown core module ${name}`);
    return m;
  };

  return (request, caps) => {
    const calls: CapabilityCall[] = [];
    const logs: LogLine[] = [];
    const host: JcoHost = {
      setMemlock(pid, bytes) {
        const r = caps.setMemlock(pid, bytes);
        calls.push({ op: 'set-memlock', pid, bytes, result: r.ok ? 'ok' : r.error });
        return r.ok ? { tag: 'ok' } : { tag: 'err', val: r.error };
      },
      queryVmIdentity(pid) {
        const vm = caps.queryVmIdentity(pid);
        calls.push(
          vm
            ? { op: 'query-vm-identity', pid, result: 'some', vmUuid: vm.uuid }
            : { op: 'query-vm-identity', pid, result: 'none' },
        );
        return vm ?? undefined;
      },
      log(level, message) {
        logs.push({ level, message });
      },
    };
    const { evaluate } = mod.instantiate(getCoreModule, { 'capgate:policy/host': host });
    const d = evaluate(request);
    return d.tag === 'allow'
      ? { decision: 'allow', reason: '', capabilityCalls: calls, logs }
      : { decision: 'deny', reason: d.val, capabilityCalls: calls, logs };
  };
}
