// The SDK's canonical-ABI glue checked against the reference implementation: each example
// component run through jco's transpiled glue must give the same decision, capability calls
// and log lines as its core module run through the hand-written layouts of core-harness.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { transpileBytes } from '@bytecodealliance/jco-transpile';
import type { Capabilities } from '../../runtime/capabilities/capabilities.ts';
import { createSimulatedCapabilities } from '../../runtime/capabilities/simulated/capabilities.ts';
import {
  MEMLOCK_UNLIMITED,
  type LogLevel,
  type PolicyDecision,
  type PolicyRequest,
  type VmIdentity,
} from '../../runtime/contract/types.ts';
import type { CapabilityCall, LogLine } from '../../runtime/engine/outcome.ts';
import { CoreHarness } from './core-harness.ts';
import {
  AS_EXAMPLES,
  FOREIGN,
  GiB,
  TARGET,
  componentBytes,
  coreModule,
  failingSetMemlock,
  request,
  world,
  type AsExample,
} from './fixtures.ts';

interface JcoRoot {
  evaluate(req: PolicyRequest): { tag: 'allow' } | { tag: 'deny'; val: string };
}
type JcoInstantiate = (
  getCoreModule: (path: string) => Promise<WebAssembly.Module>,
  imports: object,
) => Promise<JcoRoot>;

const workDir = mkdtempSync(join(tmpdir(), 'capgate-jco-'));
const glue = new Map<AsExample, { instantiate: JcoInstantiate; files: Record<string, Uint8Array> }>();

beforeAll(async () => {
  for (const name of AS_EXAMPLES) {
    const { files } = await transpileBytes(componentBytes(name), { name, instantiation: 'async' });
    for (const [path, bytes] of Object.entries(files)) {
      mkdirSync(dirname(join(workDir, name, path)), { recursive: true });
      writeFileSync(join(workDir, name, path), bytes);
    }
    const mod = (await import(pathToFileURL(join(workDir, name, `${name}.js`)).href)) as {
      instantiate: JcoInstantiate;
    };
    glue.set(name, { instantiate: mod.instantiate, files });
  }
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

async function viaJco(name: AsExample, req: PolicyRequest, caps: Capabilities) {
  const calls: CapabilityCall[] = [];
  const logs: LogLine[] = [];
  const host = {
    setMemlock(pid: number, bytes: bigint): void {
      const r = caps.setMemlock(pid, bytes);
      calls.push({ op: 'set-memlock', pid, bytes, result: r.ok ? 'ok' : r.error });
      // jco lowers a thrown { payload } as the result's error case.
      if (!r.ok) throw { payload: r.error };
    },
    queryVmIdentity(pid: number): VmIdentity | undefined {
      const vm = caps.queryVmIdentity(pid);
      calls.push(
        vm
          ? { op: 'query-vm-identity', pid, result: 'some', vmUuid: vm.uuid }
          : { op: 'query-vm-identity', pid, result: 'none' },
      );
      return vm ?? undefined;
    },
    log(level: LogLevel, message: string): void {
      logs.push({ level, message });
    },
  };
  const g = glue.get(name)!;
  const root = await g.instantiate(
    (path) => WebAssembly.compile(g.files[path]!),
    // jco 0.15's glue looks imports up by unversioned name (its .d.ts says versioned): give both.
    {
      'capgate:policy/host': host,
      'capgate:policy/host@1.0.0': host,
      'capgate:policy/types': {},
      'capgate:policy/types@1.0.0': {},
    },
  );
  const d = root.evaluate(req);
  const decision: PolicyDecision = d.tag === 'allow' ? { kind: 'allow' } : { kind: 'deny', reason: d.val };
  return { decision, calls, logs };
}

async function viaHarness(name: AsExample, req: PolicyRequest, caps: Capabilities) {
  const { decision, calls, logs } = (await CoreHarness.instantiate(coreModule(name), caps)).evaluate(req);
  return { decision, calls, logs };
}

const MEM = 'memory-bytes';
const cases: Array<{
  what: string;
  labels: Array<[string, string]>;
  req: PolicyRequest;
  fail?: 'not-permitted' | 'out-of-scope';
}> = [
  {
    what: 'in cap / vfio',
    labels: [
      [MEM, '2147483648'],
      ['vfio', 'true'],
    ],
    req: request(GiB),
  },
  {
    what: 'over cap',
    labels: [
      [MEM, '1024'],
      ['vfio', 'true'],
    ],
    req: request(300_000_000n),
  },
  {
    what: 'unlimited',
    labels: [
      [MEM, '18446744073709551615'],
      ['vfio', 'true'],
    ],
    req: request(MEMLOCK_UNLIMITED),
  },
  { what: 'foreign target', labels: [['vfio', 'true']], req: request(GiB, FOREIGN) },
  {
    what: 'not vfio, no memory label',
    labels: [
      ['vfio', 'no'],
      ['ключ', 'значение'],
    ],
    req: request(GiB),
  },
  {
    what: 'host refuses',
    labels: [
      [MEM, '4294967296'],
      ['vfio', 'true'],
    ],
    req: request(GiB),
    fail: 'not-permitted',
  },
  { what: 'host out-of-scope', labels: [['vfio', 'true']], req: request(GiB, TARGET), fail: 'out-of-scope' },
];

describe('AS examples: hand-written layouts agree with jco glue', () => {
  for (const name of AS_EXAMPLES) {
    for (const c of cases) {
      it(`${name}: ${c.what}`, async () => {
        const caps = () => {
          const base = createSimulatedCapabilities(world(c.labels));
          return c.fail ? failingSetMemlock(base, c.fail) : base;
        };
        const ref = await viaJco(name, c.req, caps());
        expect(await viaHarness(name, c.req, caps())).toEqual(ref);
      });
    }
  }
});
