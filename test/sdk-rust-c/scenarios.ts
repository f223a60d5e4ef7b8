// The example policies' behaviour, written down from guest-examples/README.md (not derived from
// any implementation): one simulated world per rule, with the exact decision, reason, capability
// calls and log lines every language's build must produce.
import type { PolicyRequest, VmIdentity } from '../../runtime/contract/types.ts';
import { MEMLOCK_UNLIMITED } from '../../runtime/contract/types.ts';
import type { SimulatedWorld } from '../../runtime/capabilities/simulated/world.ts';
import type { CapabilityCall, LogLine } from '../../runtime/engine/outcome.ts';

export type ExampleName = 'memlock-cap' | 'vfio-only';

export interface Expected {
  decision: 'allow' | 'deny';
  reason: string;
  capabilityCalls: CapabilityCall[];
  logs: LogLine[];
}

export interface Scenario {
  name: string;
  world: SimulatedWorld;
  request: PolicyRequest;
  expected: Expected;
}

const MiB = 1024n * 1024n;
const GiB = 1024n * MiB;
const REQUESTER = 4100;
const TARGET = 4101;
const STRANGER = 5200;

const OWN_UUID = '8d2f4c1e-0000-4000-8000-00000000a001';
const OTHER_UUID = '8d2f4c1e-0000-4000-8000-00000000b002';

function world(
  labels: Array<[string, string]>,
  options: { canRaiseHardLimit?: boolean; hard?: bigint } = {},
): SimulatedWorld {
  const own: VmIdentity = { uuid: OWN_UUID, name: 'vm-own', id: 7, labels };
  const other: VmIdentity = {
    uuid: OTHER_UUID,
    name: 'vm-other',
    id: 8,
    labels: [
      ['vfio', 'true'],
      ['memory-bytes', '99999999999'],
    ],
  };
  const hard = options.hard ?? 64n * GiB;
  return {
    requesterPid: REQUESTER,
    vms: [
      { identity: own, pids: [REQUESTER, TARGET] },
      { identity: other, pids: [STRANGER] },
    ],
    processes: [
      { pid: REQUESTER, memlock: { soft: 8n * MiB, hard } },
      { pid: TARGET, memlock: { soft: 8n * MiB, hard } },
      { pid: STRANGER, memlock: { soft: 8n * MiB, hard } },
    ],
    canRaiseHardLimit: options.canRaiseHardLimit ?? false,
  };
}

function request(bytes: bigint, targetPid = TARGET): PolicyRequest {
  return { operation: 'set-memlock', requesterPid: REQUESTER, requesterUid: 107, targetPid, bytes };
}

const queried = (pid = TARGET): CapabilityCall => ({ op: 'query-vm-identity', pid, result: 'some', vmUuid: OWN_UUID });
const notFound = (pid: number): CapabilityCall => ({ op: 'query-vm-identity', pid, result: 'none' });
const set = (bytes: bigint, result: CapabilityCall['result'] = 'ok'): CapabilityCall =>
  ({ op: 'set-memlock', pid: TARGET, bytes, result }) as CapabilityCall;
const MEM = 'memory-bytes';

function allowed(calls: CapabilityCall[], message: string): Expected {
  return { decision: 'allow', reason: '', capabilityCalls: calls, logs: [{ level: 'info', message }] };
}
function denied(reason: string, calls: CapabilityCall[], logs: LogLine[] = []): Expected {
  return { decision: 'deny', reason, capabilityCalls: calls, logs };
}
const overCap = (): Expected =>
  denied('over-cap', [queried()], [{ level: 'warn', message: 'request exceeds memory-bytes plus overhead' }]);
const noMemoryLabel = (): Expected => denied('missing-memory-bytes-label', [queried()]);
const OVERHEAD = 256n * MiB;
const U64_MAX = MEMLOCK_UNLIMITED;

export const SCENARIOS: Record<ExampleName, Scenario[]> = {
  'memlock-cap': [
    {
      name: 'under memory + overhead: raised',
      world: world([[MEM, '1073741824']]),
      request: request(GiB),
      expected: allowed([queried(), set(GiB)], 'memlock raised'),
    },
    {
      name: 'exactly memory + overhead: raised',
      world: world([[MEM, '1073741824']]),
      request: request(GiB + OVERHEAD),
      expected: allowed([queried(), set(GiB + OVERHEAD)], 'memlock raised'),
    },
    {
      name: 'over memory + overhead: denied, warned',
      world: world([[MEM, '1073741824']]),
      request: request(GiB + OVERHEAD + 1n),
      expected: overCap(),
    },
    {
      name: 'target in another VM: denied',
      world: world([[MEM, '1073741824']]),
      request: request(MiB, STRANGER),
      expected: denied('target-not-in-requester-vm', [notFound(STRANGER)]),
    },
    {
      name: 'target pid unknown: denied',
      world: world([]),
      request: request(MiB, 999_999),
      expected: denied('target-not-in-requester-vm', [notFound(999_999)]),
    },
    {
      name: 'no memory-bytes label: denied',
      world: world([['team', 'a']]),
      request: request(MiB),
      expected: noMemoryLabel(),
    },
    { name: 'empty label: denied', world: world([[MEM, '']]), request: request(MiB), expected: noMemoryLabel() },
    {
      name: 'non-digit label: denied',
      world: world([[MEM, '8589934592x']]),
      request: request(MiB),
      expected: noMemoryLabel(),
    },
    {
      name: 'signed label: denied',
      world: world([[MEM, '+8589934592']]),
      request: request(MiB),
      expected: noMemoryLabel(),
    },
    {
      name: 'spaced label: denied',
      world: world([[MEM, ' 8589934592']]),
      request: request(MiB),
      expected: noMemoryLabel(),
    },
    {
      name: '21-digit label: denied',
      world: world([[MEM, '000000000008589934592']]),
      request: request(MiB),
      expected: noMemoryLabel(),
    },
    {
      name: 'u64-overflowing label: denied',
      world: world([[MEM, '18446744073709551616']]),
      request: request(MiB),
      expected: noMemoryLabel(),
    },
    {
      name: '20 digits with leading zeros are valid',
      world: world([[MEM, '00000000001073741824']]),
      request: request(GiB + OVERHEAD),
      expected: allowed([queried(), set(GiB + OVERHEAD)], 'memlock raised'),
    },
    {
      name: 'cap saturates at u64 max (no wrap-around)',
      world: world([[MEM, String(U64_MAX - 100n)]], { canRaiseHardLimit: true }),
      request: request(U64_MAX),
      expected: allowed([queried(), set(U64_MAX)], 'memlock raised'),
    },
    {
      name: 'first of duplicate labels wins',
      world: world([
        [MEM, '1048576'],
        [MEM, '99999999999'],
      ]),
      request: request(512n * MiB),
      expected: overCap(),
    },
    {
      name: 'kernel refuses above the hard limit (no CAP_SYS_RESOURCE)',
      world: world([[MEM, '99999999999']], { hard: 16n * MiB }),
      request: request(GiB),
      expected: denied('set-memlock-failed: not-permitted', [queried(), set(GiB, 'not-permitted')]),
    },
    {
      name: 'lowering needs no privilege',
      world: world([[MEM, '1048576']], { hard: 16n * MiB }),
      request: request(MiB),
      expected: allowed([queried(), set(MiB)], 'memlock raised'),
    },
  ],
  'vfio-only': [
    {
      name: 'vfio VM asking unlimited: set unlimited',
      world: world([['vfio', 'true']], { canRaiseHardLimit: true }),
      request: request(U64_MAX),
      expected: allowed([queried(), set(U64_MAX)], 'vfio memlock set to unlimited'),
    },
    {
      name: 'vfio VM asking 1 GiB: set unlimited anyway',
      world: world(
        [
          ['a', 'b'],
          ['vfio', 'true'],
        ],
        { canRaiseHardLimit: true },
      ),
      request: request(GiB),
      expected: allowed([queried(), set(U64_MAX)], 'vfio memlock set to unlimited'),
    },
    {
      name: 'vfio VM asking 0: set unlimited anyway',
      world: world([['vfio', 'true']], { canRaiseHardLimit: true }),
      request: request(0n),
      expected: allowed([queried(), set(U64_MAX)], 'vfio memlock set to unlimited'),
    },
    {
      name: 'vfio=false: denied',
      world: world([['vfio', 'false']]),
      request: request(GiB),
      expected: denied('vm-not-vfio', [queried()]),
    },
    {
      name: 'vfio=TRUE is not exactly true: denied',
      world: world([['vfio', 'TRUE']]),
      request: request(GiB),
      expected: denied('vm-not-vfio', [queried()]),
    },
    {
      name: 'vfio="true " is not exactly true: denied',
      world: world([['vfio', 'true ']]),
      request: request(GiB),
      expected: denied('vm-not-vfio', [queried()]),
    },
    {
      name: 'no vfio label: denied',
      world: world([['vfio-x', 'true']]),
      request: request(GiB),
      expected: denied('vm-not-vfio', [queried()]),
    },
    {
      name: 'target in another (vfio) VM: denied',
      world: world([['vfio', 'true']]),
      request: request(GiB, STRANGER),
      expected: denied('target-not-in-requester-vm', [notFound(STRANGER)]),
    },
    {
      name: 'kernel refuses unlimited without CAP_SYS_RESOURCE',
      world: world([['vfio', 'true']], { hard: 8n * MiB }),
      request: request(MiB),
      expected: denied('set-memlock-failed: not-permitted', [queried(), set(U64_MAX, 'not-permitted')]),
    },
  ],
};
