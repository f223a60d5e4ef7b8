// Landlock (Linux 5.13+): a process takes away, for good, its own access to the file tree (and,
// in later ABIs, to TCP ports, abstract Unix sockets and signals to processes outside its
// domain), with no privilege but no_new_privs. A domain is per thread: it covers the thread that
// enters it and every thread and process it starts afterwards, never a sibling that already
// runs, unless the kernel knows LANDLOCK_RESTRICT_SELF_TSYNC (ABI 8). A process that execs after
// entering one has every thread of its new image inside it.
//
// Each ABI version adds rights; a ruleset may handle only those the running kernel knows, so what
// is handled (and so refused unless a rule allows it) is derived from the version it reports.
// Rights the kernel knows and this file does not (an ABI past KNOWN_LANDLOCK_ABI) stay allowed:
// the version used is reported so that callers can say so.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { EOPNOTSUPP, ENOSYS, EPERM, errnoName } from './errno.ts';
import { libc } from './libc.ts';

/** The newest ABI whose rights this file knows. */
export const KNOWN_LANDLOCK_ABI = 8;

const LANDLOCK_CREATE_RULESET_VERSION = 1;
const LANDLOCK_RULE_PATH_BENEATH = 1;
const LANDLOCK_RESTRICT_SELF_TSYNC = 1 << 3;

/** Filesystem access rights (uapi linux/landlock.h), by the ABI that added them. */
export const FS = {
  EXECUTE: 1n << 0n,
  WRITE_FILE: 1n << 1n,
  READ_FILE: 1n << 2n,
  READ_DIR: 1n << 3n,
  REMOVE_DIR: 1n << 4n,
  REMOVE_FILE: 1n << 5n,
  MAKE_CHAR: 1n << 6n,
  MAKE_DIR: 1n << 7n,
  MAKE_REG: 1n << 8n,
  MAKE_SOCK: 1n << 9n,
  MAKE_FIFO: 1n << 10n,
  MAKE_BLOCK: 1n << 11n,
  MAKE_SYM: 1n << 12n,
  /** ABI 2: link or rename a file into another directory. */
  REFER: 1n << 13n,
  /** ABI 3. */
  TRUNCATE: 1n << 14n,
  /** ABI 5: ioctl on a character or block device opened afterwards. */
  IOCTL_DEV: 1n << 15n,
} as const;

/** The rights that apply to a file that is not a directory (a rule on one may name no other). */
const FILE_RIGHTS = FS.EXECUTE | FS.WRITE_FILE | FS.READ_FILE | FS.TRUNCATE | FS.IOCTL_DEV;

/** Every filesystem right ABI `abi` knows. */
export function fsRights(abi: number): bigint {
  let rights = (1n << 13n) - 1n; // ABI 1: EXECUTE..MAKE_SYM
  if (abi >= 2) rights |= FS.REFER;
  if (abi >= 3) rights |= FS.TRUNCATE;
  if (abi >= 5) rights |= FS.IOCTL_DEV;
  return rights;
}

/** ABI 4: binding and connecting TCP sockets (LANDLOCK_ACCESS_NET_BIND_TCP, _CONNECT_TCP). */
export function netRights(abi: number): bigint {
  return abi >= 4 ? (1n << 0n) | (1n << 1n) : 0n;
}

/** ABI 6: abstract Unix sockets and signals, scoped to the domain (LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET, _SIGNAL). */
export function scopes(abi: number): bigint {
  return abi >= 6 ? (1n << 0n) | (1n << 1n) : 0n;
}

export type LandlockSupport =
  | { ok: true; abi: number }
  /** `why`: in words, with what to do. */
  | { ok: false; errno: number; why: string };

/**
 * The Landlock ABI version of the running kernel. ENOSYS: a kernel built without it;
 * EOPNOTSUPP: built in but not enabled at boot (`lsm=`); EPERM: a seccomp filter of this
 * process (a container runtime's profile, a unit's SystemCallFilter) refuses the call.
 */
export function landlockSupport(): LandlockSupport {
  const r = libc().landlockCreateRuleset(null, LANDLOCK_CREATE_RULESET_VERSION);
  if (r.ok) return { ok: true, abi: r.value };
  const why =
    r.errno === ENOSYS
      ? 'the kernel has no Landlock (Linux 5.13 or later, CONFIG_SECURITY_LANDLOCK)'
      : r.errno === EOPNOTSUPP
        ? 'Landlock is built into the kernel but not enabled: add landlock to the lsm= boot parameter'
        : r.errno === EPERM
          ? 'a seccomp filter refuses landlock_create_ruleset: allow landlock_create_ruleset, landlock_add_rule and landlock_restrict_self'
          : `landlock_create_ruleset failed with ${errnoName(r.errno)}`;
  return { ok: false, errno: r.errno, why };
}

/** Read-only: read files and list directories beneath `path`; `execute` also lets them be executed. */
export interface PathRule {
  path: string;
  execute?: boolean;
}

export interface Restriction {
  /** The ABI whose rights the ruleset handled (the kernel's, at most KNOWN_LANDLOCK_ABI). */
  abi: number;
  /** Every thread of the process entered the domain (TSYNC), or only the calling one and what it starts. */
  threads: 'all' | 'calling';
}

export class LandlockError extends Error {
  override readonly name = 'LandlockError';
}

/**
 * Restricts the calling thread (every thread when `allThreads` and the kernel has TSYNC) to
 * reading beneath `rules`' paths, and to no TCP, no abstract Unix socket and no signal outside
 * the domain where the ABI knows them: every right the kernel's ABI knows is handled, and only
 * reading (and executing, where asked) is allowed back. No rules: no file access at all.
 * Needs no_new_privs (or CAP_SYS_ADMIN). Throws LandlockError saying what failed; a path that
 * does not exist is left out (nothing there to read). Callers check landlockSupport() first.
 */
export function restrictSelf(abi: number, rules: readonly PathRule[], allThreads = false): Restriction {
  const used = Math.min(abi, KNOWN_LANDLOCK_ABI);
  if (used < 1) throw new LandlockError(`Landlock ABI ${abi} is not one this file knows`);
  const c = libc();
  const handled = fsRights(used);
  // struct landlock_ruleset_attr grew with the ABI: handled_access_fs, then _net (4), then scoped (6).
  const attr = Buffer.alloc(used >= 6 ? 24 : used >= 4 ? 16 : 8);
  attr.writeBigUInt64LE(handled, 0);
  if (used >= 4) attr.writeBigUInt64LE(netRights(used), 8);
  if (used >= 6) attr.writeBigUInt64LE(scopes(used), 16);
  const ruleset = c.landlockCreateRuleset(attr, 0);
  if (!ruleset.ok) throw new LandlockError(`landlock_create_ruleset failed with ${errnoName(ruleset.errno)}`);
  try {
    for (const rule of rules) addReadRule(ruleset.value, rule, handled);
    const tsync = allThreads && used >= 8;
    const r = c.landlockRestrictSelf(ruleset.value, tsync ? LANDLOCK_RESTRICT_SELF_TSYNC : 0);
    if (!r.ok) throw new LandlockError(`landlock_restrict_self failed with ${errnoName(r.errno)}`);
    return { abi: used, threads: tsync ? 'all' : 'calling' };
  } finally {
    c.close(ruleset.value);
  }
}

/** O_PATH (the same on x86_64 and aarch64): a handle on the file, which reads nothing. */
const O_PATH = 0o10000000;

function addReadRule(ruleset: number, rule: PathRule, handled: bigint): void {
  let fd: number;
  try {
    fd = openSync(rule.path, O_PATH);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new LandlockError(`opening ${rule.path} for a Landlock rule failed: ${(err as Error).message}`);
  }
  try {
    const directory = fstatSync(fd).isDirectory();
    let allowed = FS.READ_FILE | (rule.execute === true ? FS.EXECUTE : 0n);
    if (directory) allowed |= FS.READ_DIR;
    else allowed &= FILE_RIGHTS;
    // struct landlock_path_beneath_attr, packed: u64 allowed_access, s32 parent_fd.
    const attr = Buffer.alloc(12);
    attr.writeBigUInt64LE(allowed & handled, 0);
    attr.writeInt32LE(fd, 8);
    const r = libc().landlockAddRule(ruleset, LANDLOCK_RULE_PATH_BENEATH, attr);
    if (!r.ok) throw new LandlockError(`landlock_add_rule for ${rule.path} failed with ${errnoName(r.errno)}`);
  } finally {
    closeSync(fd);
  }
}
