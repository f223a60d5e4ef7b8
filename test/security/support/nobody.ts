// The attacker of these tests: a real unprivileged local user (uid/gid 65534, no supplementary
// groups), reached with setpriv as the reproductions were.
// Every such process is a registered child (test/support/processes/children.ts), which runs it
// through setpriv --reuid/--regid --clear-groups.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { runChild, spawnChild } from '../../support/processes/children.ts';

export const NOBODY = 65534;
const asUser = { uid: NOBODY, gid: NOBODY };

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command as uid 65534 and waits for it. */
export async function runAsNobody(
  command: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Ran> {
  const [file, ...args] = command;
  const r = await runChild(file!, args, {
    cwd: options.cwd ?? '/',
    env: options.env ?? { PATH: process.env.PATH },
    asUser,
  });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a shell script as uid 65534 and throws with its output when it fails. */
export async function shAsNobody(script: string): Promise<string> {
  const r = await runAsNobody(['sh', '-c', script]);
  if (r.code !== 0)
    throw new Error(`as uid ${NOBODY}: sh -c ${JSON.stringify(script)} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Starts a long-running command as uid 65534, in its own process group (see killGroup). */
export function spawnAsNobody(
  command: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): ChildProcess {
  const [file, ...args] = command;
  return spawnChild(file!, args, {
    cwd: options.cwd ?? '/',
    env: options.env ?? { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
    asUser,
  });
}

/** SIGKILLs a registered child's whole process group before the hooks would (e.g. before its daemon stops), and waits for its exit. */
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
