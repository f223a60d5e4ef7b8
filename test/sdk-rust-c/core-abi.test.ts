// The Rust and C SDKs' canonical-ABI glue and the example policies, run through a hand-written
// host (harness/run-core.ts) over the committed builds: every README rule, every capability
// error name, trap on an out-of-contract operation, and no leak across evaluations.
import { describe, expect, it } from 'vitest';
import { CAPABILITY_ERRORS, type CapabilityError, type PolicyRequest } from '../../runtime/contract/types.ts';
import type { Capabilities } from '../../runtime/capabilities/capabilities.ts';
import { createSimulatedCapabilities } from '../../runtime/capabilities/simulated/capabilities.ts';
import { instantiateCore, runCore } from './harness/run-core.ts';
import { prebuiltBuilds } from './languages.ts';
import { SCENARIOS } from './scenarios.ts';

const builds = prebuiltBuilds();

const vm = {
  uuid: 'u-1',
  name: 'vm',
  id: -3,
  labels: [
    ['vfio', 'true'],
    ['memory-bytes', '4096'],
  ] as Array<[string, string]>,
};
const request: PolicyRequest = {
  operation: 'set-memlock',
  requesterPid: 10,
  requesterUid: 0,
  targetPid: 11,
  bytes: 1024n,
};

function failingCaps(error: CapabilityError): Capabilities {
  return { setMemlock: () => ({ ok: false, error }), queryVmIdentity: () => vm };
}

describe.each(builds.map((b) => [`${b.language}/${b.example}`, b] as const))('%s', (_label, build) => {
  it.each(SCENARIOS[build.example].map((s) => [s.name, s] as const))('%s', (_name, scenario) => {
    const run = runCore(build.core, scenario.request, createSimulatedCapabilities(scenario.world));
    expect(run).toEqual(scenario.expected);
  });

  it.each(CAPABILITY_ERRORS.map((e) => [e]))('reports set-memlock error %s by its WIT name', (error) => {
    const run = runCore(build.core, request, failingCaps(error));
    expect(run.decision).toBe('deny');
    expect(run.reason).toBe(`set-memlock-failed: ${error}`);
  });

  it('traps on an operation discriminant outside the contract (fail closed)', () => {
    expect(() => runCore(build.core, request, failingCaps('internal'), 1)).toThrow(WebAssembly.RuntimeError);
  });

  it('frees the identity and the reason: 2000 evaluations in one instance do not grow memory', () => {
    const big = {
      ...vm,
      labels: Array.from({ length: 64 }, (_, i) => [`label-${i}`, 'x'.repeat(200)] as [string, string]),
    };
    const caps: Capabilities = {
      setMemlock: () => ({ ok: false, error: 'quota-exceeded' }),
      queryVmIdentity: () => big,
    };
    const instance = instantiateCore(build.core);
    const first = instance.evaluate(request, caps);
    const pagesAfterFirst = instance.memory.buffer.byteLength;
    for (let i = 0; i < 2000; i++) expect(instance.evaluate(request, caps)).toEqual(first);
    expect(instance.memory.buffer.byteLength).toBe(pagesAfterFirst);
  });
});
