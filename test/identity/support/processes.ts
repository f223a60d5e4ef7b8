// Real process trees for identity and capability tests, always cleaned up.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';

const live = new Set<ChildProcess>();

/** Spawns `sh -c script` in its own process group (so the whole tree can be killed at once). */
export function spawnShell(script: string, options: SpawnOptions = {}): ChildProcess & { pid: number } {
  const child = spawn('sh', ['-c', script], { stdio: 'ignore', detached: true, ...options });
  if (child.pid === undefined) throw new Error(`could not spawn sh -c ${script}`);
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child as ChildProcess & { pid: number };
}

/** Kills every process group we spawned; for afterEach. */
export async function killAll(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) waits.push(once(child, 'exit'));
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await Promise.all(waits);
  live.clear();
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

/** Polls until `pid` has at least `count` children; returns them. */
export async function waitForChildren(pid: number, count: number, timeoutMs = 10_000): Promise<number[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const kids = childrenOf(pid);
    if (kids.length >= count) return kids;
    if (Date.now() > until) throw new Error(`pid ${pid} has ${kids.length} children, expected ${count}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A pid that existed and is now dead and reaped. */
export async function deadPid(): Promise<number> {
  const child = spawn('true', { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid as number;
}

export interface MemlockLimits {
  soft: bigint | 'unlimited';
  hard: bigint | 'unlimited';
}

/** "Max locked memory" from /proc/<pid>/limits — the kernel's own report, not our prlimit. */
export function memlockFromProc(pid: number): MemlockLimits {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max locked memory'));
  if (line === undefined) throw new Error(`no "Max locked memory" in /proc/${pid}/limits`);
  const [soft, hard] = line.slice('Max locked memory'.length).trim().split(/\s+/);
  const value = (s: string | undefined): bigint | 'unlimited' => (s === 'unlimited' ? 'unlimited' : BigInt(s ?? 'x'));
  return { soft: value(soft), hard: value(hard) };
}

/**
 * Tries to make the next fork get `pid` (root writes ns_last_pid). Other processes on the host
 * may fork in between, so callers retry. Returns the spawned child either way.
 */
export function spawnShellAtPid(pid: number, script: string): ChildProcess & { pid: number } {
  writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
  return spawnShell(script);
}
