// The attacker of these tests: a real unprivileged local user (uid/gid 65534, no supplementary
// groups), reached with setpriv as the reproductions were.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

export const NOBODY = 65534;

/** setpriv arguments that run what follows as uid/gid 65534 with no supplementary groups. */
export const SETPRIV = ['setpriv', '--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups'] as const;

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command as uid 65534 and waits for it. */
export function runAsNobody(command: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Ran {
  const r = spawnSync(SETPRIV[0], [...SETPRIV.slice(1), ...command], { cwd: options.cwd ?? '/', env: options.env ?? { PATH: process.env.PATH }, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a shell script as uid 65534 and throws with its output when it fails. */
export function shAsNobody(script: string): string {
  const r = runAsNobody(['sh', '-c', script]);
  if (r.code !== 0) throw new Error(`as uid ${NOBODY}: sh -c ${JSON.stringify(script)} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Starts a long-running command as uid 65534, in its own process group (see killGroup). */
export function spawnAsNobody(command: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  return spawn(SETPRIV[0], [...SETPRIV.slice(1), ...command], { cwd: options.cwd ?? '/', env: options.env ?? { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
}

/** SIGKILLs a detached child's whole process group and waits for the child's exit. */
export async function killGroup(child: ChildProcess | undefined): Promise<void> {
  if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  await exited;
}

/** A directory that looks like /tmp: root-owned, mode 1777 (anyone may create entries in it). */
export function stickyTmp(parent: string): string {
  const dir = fs.mkdtempSync(`${parent}/sticky-`);
  fs.chmodSync(dir, 0o1777);
  return dir;
}
