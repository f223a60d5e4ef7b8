// The world of `capgate eval`: one request from a process in a VM, against a target placed
// where the flags say, as a one-case scenario (so it goes through the daemon's gate too).
import type { SimulatedLimit } from '../capabilities/simulated/world.ts';
import { DEFAULT_SIMULATED_LIMIT } from '../capabilities/simulated/world.ts';
import type { Scenario, ScenarioProcess, ScenarioVm } from './scenario/types.ts';

export const TARGET_PLACES = ['vm', 'requester', 'other-vm', 'host', 'absent'] as const;
export type TargetPlace = (typeof TARGET_PLACES)[number];

export const ONE_SHOT_PIDS = { requester: 1000, vmMember: 1001, otherVm: 2001, host: 3001, absent: 4001 } as const;

export interface OneShot {
  labels: Array<[string, string]>;
  vmName: string;
  vmUuid: string;
  vmId: number;
  target: TargetPlace;
  requesterUid: number;
  bytes: bigint;
  /** The target's current RLIMIT_MEMLOCK; default Linux's 8Mi. */
  memlock?: SimulatedLimit;
  canRaiseHardLimit: boolean;
  policyBound: boolean;
}

const TARGET_PID: Record<TargetPlace, number> = {
  vm: ONE_SHOT_PIDS.vmMember,
  requester: ONE_SHOT_PIDS.requester,
  'other-vm': ONE_SHOT_PIDS.otherVm,
  host: ONE_SHOT_PIDS.host,
  absent: ONE_SHOT_PIDS.absent,
};

export function oneShotScenario(o: OneShot): Scenario {
  const targetPid = TARGET_PID[o.target];
  const vms: ScenarioVm[] = [
    {
      identity: { uuid: o.vmUuid, name: o.vmName, id: o.vmId, labels: o.labels },
      pids: [ONE_SHOT_PIDS.requester, ONE_SHOT_PIDS.vmMember],
    },
    {
      identity: {
        uuid: '00000000-0000-4000-8000-0000000000ff',
        name: 'other-tenant',
        id: o.vmId === 2 ? 3 : 2,
        labels: [],
      },
      pids: [ONE_SHOT_PIDS.otherVm],
    },
  ];
  const memlock = o.memlock ?? { ...DEFAULT_SIMULATED_LIMIT };
  const processes: ScenarioProcess[] = [{ pid: ONE_SHOT_PIDS.host, memlock: { ...DEFAULT_SIMULATED_LIMIT } }];
  if (o.target !== 'absent' && o.target !== 'host') processes.push({ pid: targetPid, memlock });
  else if (o.target === 'host') processes[0] = { pid: ONE_SHOT_PIDS.host, memlock };
  return {
    host: { canRaiseHardLimit: o.canRaiseHardLimit, policyBound: o.policyBound },
    vms,
    processes,
    absentPids: [ONE_SHOT_PIDS.absent],
    cases: [
      {
        name: 'eval',
        request: {
          operation: 'set-memlock',
          requesterPid: ONE_SHOT_PIDS.requester,
          requesterUid: o.requesterUid,
          targetPid,
          bytes: o.bytes,
        },
        expect: { decision: 'any' },
      },
    ],
  };
}
