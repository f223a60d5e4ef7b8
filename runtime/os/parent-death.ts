// A helper process that must not outlive the process that started it: the kernel sends it
// SIGKILL when its parent goes (PR_SET_PDEATHSIG), whatever its event loop is busy with. The
// parent is the thread that forked it; for a process started from a Node main thread, the
// process itself.
import { errnoName } from './errno.ts';
import { libc } from './libc.ts';

const PR_SET_PDEATHSIG = 1;
const SIGKILL = 9;

/**
 * Asks the kernel to SIGKILL this process when its parent exits, then checks that the parent is
 * still `parentPid`: one that died before the request took effect (this process was re-parented)
 * would never send it, so the process exits here instead. Throws if prctl fails.
 */
export function dieWithParent(parentPid: number): void {
  const r = libc().prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (!r.ok) throw new Error(`prctl(PR_SET_PDEATHSIG) failed with ${errnoName(r.errno)}`);
  if (process.ppid !== parentPid) process.exit(1);
}
