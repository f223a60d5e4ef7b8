// A real process standing in for a VM: `sleep 300` as the VM's root, and the 'linux'
// CapabilitySpec scoped to that VM, for the tests that run the real capabilities (real /proc
// membership, real prlimit) on a process they own. The test kills `child` in its after-hook.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { CapabilitySpec } from '../../runtime/capabilities/spec.ts';
import { MEMLOCK_UNLIMITED, type VmIdentity } from '../../runtime/contract/types.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import { spawnChild } from './processes/children.ts';

export interface VmRoot {
  child: ChildProcess;
  pid: number;
  /** The real capabilities, scoped to the VM this process roots (by pid and start time). */
  spec: Extract<CapabilitySpec, { kind: 'linux' }>;
}

/** `identity`: the VM's, or made from the root's pid (one VM per process). */
export function spawnVmRoot(identity: VmIdentity | ((pid: number) => VmIdentity)): VmRoot {
  const child = spawnChild('sleep', ['300'], { stdio: 'ignore' });
  const pid = child.pid!;
  const start = readStartTime(pid);
  if (start === null) throw new Error(`could not read the start time of child ${pid}`);
  const scope = {
    identity: typeof identity === 'function' ? identity(pid) : identity,
    anchor: { rootPid: pid, rootStartTime: start },
  };
  return { child, pid, spec: { kind: 'linux', scope } };
}

/** The kernel's RLIMIT_MEMLOCK of `pid` (/proc/<pid>/limits, not capgate's prlimit); unlimited is MEMLOCK_UNLIMITED. */
export function memlockOf(pid: number): { soft: bigint; hard: bigint } {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max locked memory'));
  if (line === undefined) throw new Error(`no "Max locked memory" in /proc/${pid}/limits`);
  const [soft, hard] = line.slice('Max locked memory'.length).trim().split(/\s+/);
  const n = (s: string | undefined): bigint => (s === 'unlimited' ? MEMLOCK_UNLIMITED : BigInt(s!));
  return { soft: n(soft), hard: n(hard) };
}
