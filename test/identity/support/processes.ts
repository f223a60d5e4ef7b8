// Real process trees for identity and capability tests, always cleaned up (test/support/processes/).
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { once } from 'node:events';
import { killChildren, spawnChild, type SpawnChildOptions } from '../../support/processes/children.ts';
import { waitFor, waitUntil } from '../../support/wait.ts';

/** Spawns `sh -c script` in its own process group (so the whole tree can be killed at once). */
export function spawnShell(script: string, options: SpawnChildOptions = {}): ChildProcess & { pid: number } {
  const child = spawnChild('sh', ['-c', script], { stdio: 'ignore', ...options });
  if (child.pid === undefined) throw new Error(`could not spawn sh -c ${script}`);
  return child as ChildProcess & { pid: number };
}

/** Kills every process tree spawned so far and waits for them (the after-hooks do it too). */
export function killAll(): Promise<void> {
  return killChildren('all');
}

function ppidOf(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** Direct children of `pid`, from a /proc scan (independent of the code under test's walk). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (ppidOf(Number(name)) === pid) out.push(Number(name));
  }
  return out.sort((a, b) => a - b);
}

/** Polls /proc until `pid` has at least `count` children; returns them. */
export function waitForChildren(pid: number, count: number): Promise<number[]> {
  return waitFor(
    () => {
      const kids = childrenOf(pid);
      return kids.length >= count ? kids : undefined;
    },
    () => `pid ${pid} to have ${count} children (it has ${childrenOf(pid).length})`,
  );
}

/** Resolves once `pid` is gone from /proc: killed and reaped by its parent (not ours to wait for). */
export function waitForReaped(pid: number): Promise<void> {
  return waitUntil(() => !existsSync(`/proc/${pid}`), `pid ${pid} to be reaped`);
}

/**
 * Clock ticks since boot (USER_HZ, 100 a second), the unit and clock of a process's start time
 * in /proc/<pid>/stat, read from /proc/uptime (same clock, centiseconds).
 */
export function bootTicks(): number {
  const [seconds, centis] = readFileSync('/proc/uptime', 'utf8').split(' ')[0]!.split('.');
  return Number(seconds) * 100 + Number(centis);
}

/**
 * Resolves once a process started now gets a later start time than `startTime`: a pid reused
 * within the same tick would look like the same process to start times (the pidfd covers that).
 */
export function waitForTickAfter(startTime: number): Promise<void> {
  return waitUntil(() => bootTicks() > startTime, `the clock to tick past start time ${startTime}`, { intervalMs: 5 });
}

/** Removes a cgroup directory once it is empty: killed tasks leave their group asynchronously. */
export function removeCgroupWhenEmpty(dir: string): Promise<void> {
  return waitFor(() => {
    try {
      rmdirSync(dir);
      return true;
    } catch {
      return undefined;
    }
  }, `cgroup ${dir} to empty, so it can be removed`).then(() => undefined);
}

/** A pid that existed and is now dead and reaped. */
export async function deadPid(): Promise<number> {
  const child = spawnChild('true', [], { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid as number;
}

export interface MemlockLimits {
  soft: bigint | 'unlimited';
  hard: bigint | 'unlimited';
}

/** "Max locked memory" from /proc/<pid>/limits — the kernel's own report, not our prlimit. */
export function memlockFromProc(pid: number): MemlockLimits {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max locked memory'));
  if (line === undefined) throw new Error(`no "Max locked memory" in /proc/${pid}/limits`);
  const [soft, hard] = line.slice('Max locked memory'.length).trim().split(/\s+/);
  const value = (s: string | undefined): bigint | 'unlimited' => (s === 'unlimited' ? 'unlimited' : BigInt(s ?? 'x'));
  return { soft: value(soft), hard: value(hard) };
}

/**
 * Starts `sh -c script` as process `pid` (just freed) and returns `pid`, or null when the kernel
 * gave the number to someone else every time. A launcher shell writes ns_last_pid (root) and
 * forks the script at once: a window of microseconds, where Node's own spawn (through setpriv)
 * takes milliseconds. On a busy machine other processes still fork in that window, or the
 * launcher is preempted inside it, so the launcher itself tries up to LAUNCH_TRIES times, killing
 * each child that got another number. Synchronous, for callers in the middle of a capability
 * call; the script runs in the launcher's process group, so the after-hooks kill it with the launcher.
 */
export function spawnShellAtPid(pid: number, script: string): number | null {
  const launcher = spawnShell(
    `i=0; while [ $i -lt ${LAUNCH_TRIES} ]; do echo ${pid - 1} > /proc/sys/kernel/ns_last_pid; (${script}) & ` +
      `if [ $! -eq ${pid} ]; then wait; exit 0; fi; kill -9 $!; wait $!; i=$((i + 1)); done; exit 1`,
  );
  const until = performance.now() + 10_000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    if (ppidOf(pid) === launcher.pid) return pid;
    if (stateOf(launcher.pid) !== 'running') return null; // it gave up (a zombie until Node reaps it)
    if (performance.now() > until)
      throw new Error(`the launcher shell ${launcher.pid} neither got pid ${pid} nor gave up within 10 s`);
    Atomics.wait(pause, 0, 0, 1);
  }
}

const LAUNCH_TRIES = 50;

function stateOf(pid: number): 'running' | 'exited' {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3) === 'Z' ? 'exited' : 'running';
  } catch {
    return 'exited';
  }
}
