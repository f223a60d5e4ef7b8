// Giving up privilege for good, with no capability needed: no_new_privs, every capability of the
// calling thread (effective, permitted, inheritable, ambient) and, where CAP_SETPCAP allows it,
// the bounding set. Capabilities are per thread in Linux, and a Node process has threads before
// its first line of JavaScript runs (V8's platform workers): `execWithoutPrivileges` gives them
// up for the whole process by re-executing it from a thread that holds none, under
// no_new_privs, which makes the kernel grant a uid-0 process at execve no more than the caller
// held (security/commoncap.c: the permitted set is intersected with the old one).
import { readFileSync } from 'node:fs';
import { errnoName, EPERM } from './errno.ts';
import { libc } from './libc.ts';
import { threadCredentials } from './thread-credentials.ts';
import { currentThreadId } from './thread-id.ts';

const PR_CAPBSET_DROP = 24;
const PR_SET_NO_NEW_PRIVS = 38;
const PR_CAP_AMBIENT = 47;
const PR_CAP_AMBIENT_CLEAR_ALL = 4;
const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;

export interface Dropped {
  /**
   * 'empty', or what is left of it when this thread lacked CAP_SETPCAP to drop it (the bounding
   * set only bounds what execve grants).
   */
  boundingSet: string;
}

function lastCapability(): number {
  try {
    return Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  } catch {
    return 63;
  }
}

/**
 * Sets no_new_privs and drops every capability of the calling thread, the bounding set too when
 * it may. Throws, naming the step, when a step that needs no privilege fails.
 */
export function dropPrivilegesOfThisThread(): Dropped {
  const c = libc();
  const step = (what: string, r: ReturnType<typeof c.prctl>): void => {
    if (!r.ok) throw new Error(`${what} failed with ${errnoName(r.errno)}`);
  };
  step('prctl(PR_SET_NO_NEW_PRIVS)', c.prctl(PR_SET_NO_NEW_PRIVS, 1));
  // Before capset: dropping from the bounding set needs CAP_SETPCAP, which capset then drops.
  let kept = false;
  // Without CAP_SETPCAP the first drop fails with EPERM, and so would every other.
  for (let cap = 0; cap <= lastCapability(); cap++) {
    const r = c.prctl(PR_CAPBSET_DROP, cap);
    if (r.ok) continue;
    if (r.errno !== EPERM) throw new Error(`prctl(PR_CAPBSET_DROP, ${cap}) failed with ${errnoName(r.errno)}`);
    kept = true;
    break;
  }
  step('prctl(PR_CAP_AMBIENT_CLEAR_ALL)', c.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL));
  step('capset (every capability set to none)', c.clearCapabilities());
  const left = threadCredentials('self', currentThreadId())?.capBnd;
  return {
    boundingSet:
      left === 0n ? 'empty' : `${left?.toString(16) ?? 'unknown'}${kept ? ' (no CAP_SETPCAP to drop it)' : ''}`,
  };
}

/**
 * Replaces this process with `node <execArgv> <script>`, started from this thread after
 * dropPrivilegesOfThisThread: every thread of the new image starts without capabilities. `keepFds`
 * stay open across it (Node opens its stdio and IPC channel close-on-exec). Returns only on
 * failure, saying why.
 */
export function execWithoutPrivileges(
  script: string,
  execArgv: readonly string[],
  env: Readonly<Record<string, string>>,
  keepFds: readonly number[],
): string {
  const c = libc();
  for (const fd of keepFds) {
    const flags = c.fcntl(fd, F_GETFD, 0);
    if (!flags.ok) return `fcntl(${fd}, F_GETFD) failed with ${errnoName(flags.errno)}`;
    const r = c.fcntl(fd, F_SETFD, flags.value & ~FD_CLOEXEC);
    if (!r.ok) return `fcntl(${fd}, F_SETFD) failed with ${errnoName(r.errno)}`;
  }
  const r = c.execve(
    process.execPath,
    [process.execPath, ...execArgv, script],
    Object.entries(env).map(([k, v]) => `${k}=${v}`),
  );
  return `execve(${process.execPath}) failed with ${r.ok ? 'no error' : errnoName(r.errno)}`;
}
