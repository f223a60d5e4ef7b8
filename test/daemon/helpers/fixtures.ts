// Shared e2e data: the real AS policies, VM registrations for agent processes, /proc limits.
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { VmRegistration } from '../../../runtime/wire/index.ts';
import { REPO_ROOT } from './daemon-process.ts';

export const MiB = 1024n * 1024n;

export function asPolicy(name: 'memlock-cap' | 'vfio-only'): Uint8Array {
  return fs.readFileSync(path.join(REPO_ROOT, 'guest-examples/assemblyscript/build', `${name}.wasm`));
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export function vmFor(rootPid: number, name: string, labels: Array<[string, string]> = []): VmRegistration {
  return { identity: { uuid: randomUUID(), name, id: rootPid % 100000, labels }, anchor: { rootPid } };
}

/** Soft and hard "Max locked memory" of a live process, from /proc. */
export function memlockOf(pid: number): { soft: string; hard: string } {
  const line = fs
    .readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max locked memory'));
  if (!line) throw new Error(`no memlock line in /proc/${pid}/limits`);
  const [soft, hard] = line.slice('Max locked memory'.length).trim().split(/\s+/);
  return { soft: soft!, hard: hard! };
}

/** Resident set size of a process in KiB. */
export function rssKiB(pid: number): number {
  const line = fs
    .readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? NaN);
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  tries = 400,
): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`gave up waiting for ${what}`);
}
