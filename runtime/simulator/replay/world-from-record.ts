// Rebuilds, from one audit record, a simulated host in which the recorded policy would have
// seen exactly what it saw: the requester's VM with its identity, the pids the record shows
// inside or outside it, and limits consistent with the recorded set-memlock results.
import {
  DEFAULT_SIMULATED_LIMIT,
  type SimulatedProcess,
  type SimulatedWorld,
} from '../../capabilities/simulated/world.ts';
import type { PolicyRequest } from '../../contract/types.ts';
import type { AuditRecord } from '../../wire/index.ts';
import { parseBytes } from '../../wire/operations.ts';

export interface ReplayInput {
  request: PolicyRequest;
  world: SimulatedWorld;
  /** Pids the record shows naming no process (no-such-process): absent from the world. */
  absentPids: number[];
  /** Facts the record does not show and the rebuild had to assume. */
  assumptions: string[];
}

function bytesOf(wire: string): bigint {
  const p = parseBytes(wire);
  return p.ok ? p.value : 0n;
}

/**
 * Null when no policy decision is recorded: no policy ran (the daemon decided alone), or its
 * decision was lost (a restart audited only its effects as decision-lost): nothing to compare.
 */
export function replayInputFrom(record: AuditRecord): ReplayInput | null {
  if (record.vm === null || record.policy === null || record.errorKind === 'decision-lost') return null;
  const requesterPid = record.requester.pid;
  const members = new Set<number>([requesterPid]);
  const outside = new Set<number>();
  const absent = new Set<number>();
  // Lowest bytes the kernel refused per pid: the hard limit must sit below it.
  const refusedAt = new Map<number, bigint>();
  const grantedAt = new Map<number, bigint>();
  const assumptions: string[] = [];

  for (const c of record.capabilityCalls) {
    if (c.op === 'query-vm-identity') {
      (c.result === 'some' ? members : outside).add(c.pid);
      continue;
    }
    const bytes = bytesOf(c.bytes);
    if (c.result === 'ok') {
      members.add(c.pid);
      grantedAt.set(c.pid, (grantedAt.get(c.pid) ?? 0n) > bytes ? grantedAt.get(c.pid)! : bytes);
    } else if (c.result === 'out-of-scope') outside.add(c.pid);
    else if (c.result === 'no-such-process') absent.add(c.pid);
    else if (c.result === 'not-permitted') {
      members.add(c.pid);
      const prev = refusedAt.get(c.pid);
      refusedAt.set(c.pid, prev === undefined || bytes < prev ? bytes : prev);
    }
  }
  // What the policy was asked about: the daemon's pid, when it translated the client's.
  const target = record.targetHostPid ?? record.targetPid;
  if (!members.has(target) && !outside.has(target) && !absent.has(target)) {
    members.add(target);
    if (target !== requesterPid)
      assumptions.push(`target ${target} assumed inside the requester's VM (the record does not show)`);
  }
  for (const pid of members) outside.delete(pid);
  for (const pid of [...members, ...outside]) absent.delete(pid);

  // A daemon that was refused a raise lacks CAP_SYS_RESOURCE; one that never was is assumed to hold it.
  const canRaiseHardLimit = refusedAt.size === 0;
  if (canRaiseHardLimit) assumptions.push('daemon assumed able to raise hard limits (no not-permitted in the record)');
  const processes: SimulatedProcess[] = [];
  for (const pid of [...members, ...outside]) {
    const refused = refusedAt.get(pid);
    const granted = grantedAt.get(pid);
    let hard = DEFAULT_SIMULATED_LIMIT.hard;
    if (granted !== undefined && granted > hard) hard = granted;
    if (refused !== undefined && hard >= refused) hard = refused - 1n;
    processes.push({
      pid,
      memlock: { soft: hard < DEFAULT_SIMULATED_LIMIT.soft ? hard : DEFAULT_SIMULATED_LIMIT.soft, hard },
    });
  }
  const world: SimulatedWorld = {
    requesterPid,
    vms: [{ identity: record.vm, pids: [...members] }],
    processes,
    canRaiseHardLimit,
  };
  const request: PolicyRequest = {
    operation: record.operation,
    requesterPid,
    requesterUid: record.requester.uid,
    targetPid: target,
    bytes: bytesOf(record.bytes),
  };
  return { request, world, absentPids: [...absent], assumptions };
}
