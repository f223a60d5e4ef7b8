// Which paths the daemon may trust, as sshd's StrictModes decides: a path is trusted when nobody
// but root or the daemon's own uid could have put it there or could change it. A directory
// must be owned by one of them, writable by nobody else, and not a symlink; every parent must be
// owned by one of them and writable by nobody else, except a root-owned sticky parent (/tmp),
// where others cannot rename or remove what they do not own. A symlink on the way is followed
// only when one of them owns it. Anything else is refused with the path, the problem and the fix:
// a state directory another user prepared could hand root a database of that user's choosing,
// and a run directory another user may write to lets that user swap the daemon's sockets.
import fs from 'node:fs';
import path from 'node:path';

export class UntrustedPathError extends Error {
  override readonly name = 'UntrustedPathError';
}

/** The uids whose files the daemon trusts: root and itself. */
export function trustedOwners(): readonly number[] {
  const self = process.geteuid?.() ?? 0;
  return self === 0 ? [0] : [0, self];
}

const STICKY = 0o1000;
const GROUP_WRITE = 0o020;
const OTHER_WRITE = 0o002;
/** Bound on symlinks followed while walking one path (the kernel's own limit is 40). */
const MAX_SYMLINKS = 40;

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8)}`;

function ownerText(owners: readonly number[]): string {
  return `root or the daemon's uid (${owners[owners.length - 1]})`;
}

function writers(mode: number): string | null {
  const g = (mode & GROUP_WRITE) !== 0;
  const o = (mode & OTHER_WRITE) !== 0;
  return g && o ? 'group and others' : g ? 'group' : o ? 'others' : null;
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UntrustedPathError(`cannot inspect ${p}: ${(err as Error).message}`);
  }
}

/** A directory on the way to a trusted path: owned by a trusted uid, written by nobody else (sticky root excepted). */
function checkParent(dir: string, st: fs.Stats, what: string, owners: readonly number[]): void {
  if (!st.isDirectory()) throw new UntrustedPathError(`${what}: ${dir} (a parent of it) is not a directory`);
  if (!owners.includes(st.uid)) {
    throw new UntrustedPathError(
      `${what}: its parent ${dir} is owned by uid ${st.uid}, not by ${ownerText(owners)}, so that user could rename or replace what is in it. Fix: choose a path whose every parent is owned by root (for example /run/capgate and /var/lib/capgate), or \`chown root ${dir}\` if that is right`,
    );
  }
  const w = writers(st.mode);
  if (w !== null && !(st.uid === 0 && (st.mode & STICKY) !== 0)) {
    throw new UntrustedPathError(
      `${what}: its parent ${dir} is writable by ${w} (mode ${octal(st.mode)}), so other users could rename or replace what is in it. Fix: \`chmod go-w ${dir}\`, or choose a path under directories only root may write`,
    );
  }
}

/** The path itself: a real directory (or file), owned by a trusted uid, written by nobody else. No sticky exception. */
function checkLeaf(p: string, st: fs.Stats, what: string, kind: 'directory' | 'file', owners: readonly number[]): void {
  if (st.isSymbolicLink()) {
    throw new UntrustedPathError(`${what} ${p} is a symlink; capgate does not follow a symlink here, since whoever can change it chooses where root writes. Fix: use the real ${kind} it points to, after checking who owns it`);
  }
  if (kind === 'directory' ? !st.isDirectory() : !st.isFile()) throw new UntrustedPathError(`${what} ${p} is not a ${kind}. Fix: remove it, or choose another path`);
  if (!owners.includes(st.uid)) {
    throw new UntrustedPathError(
      `${what} ${p} is owned by uid ${st.uid}, not by ${ownerText(owners)}: that user could have put anything in it. Fix: ${kind === 'directory' ? `remove it (capgate creates it afresh) or, if you trust what is in it, \`chown -R root ${p}\`` : `check its contents, then \`chown root ${p}\``}`,
    );
  }
  const w = writers(st.mode);
  if (w !== null) throw new UntrustedPathError(`${what} ${p} is writable by ${w} (mode ${octal(st.mode)}). Fix: \`chmod go-w ${p}\``);
}

/**
 * Walks the parents of `target` (an absolute path) from `/` down, checking each; a missing one is
 * created with `createMode` when given (else refused). Symlinks owned by a trusted uid are
 * followed and their targets checked the same way.
 */
function checkParents(target: string, what: string, owners: readonly number[], createMode: number | undefined, budget = { symlinks: MAX_SYMLINKS }): void {
  const names = target.split('/').filter(Boolean).slice(0, -1);
  let current = '/';
  checkParent(current, fs.lstatSync(current), what, owners);
  for (const name of names) {
    const next = path.join(current, name);
    // Missing and not to be created: lstat's own ENOENT error (not a trust problem).
    let st = createMode === undefined ? fs.lstatSync(next) : lstatOrNull(next);
    if (st === null) st = createDirectory(next, createMode!, what, owners);
    if (st.isSymbolicLink()) {
      if (!owners.includes(st.uid)) {
        throw new UntrustedPathError(`${what}: ${next} on its path is a symlink owned by uid ${st.uid}, not by ${ownerText(owners)}, so that user chooses where it leads. Fix: use the path it points to, or remove the link`);
      }
      if (--budget.symlinks < 0) throw new UntrustedPathError(`${what}: too many symlinks on the way to ${target}`);
      const real = fs.realpathSync(next);
      // The link's target is checked as a parent too (it is the directory the path goes through).
      checkParents(path.join(real, 'x'), what, owners, undefined, budget);
      current = real;
      continue;
    }
    checkParent(next, st, what, owners);
    current = next;
  }
}

/** mkdir without a race: create, then lstat, then check the owner (EEXIST: someone was first). */
function createDirectory(dir: string, mode: number, what: string, owners: readonly number[]): fs.Stats {
  let created = true;
  try {
    fs.mkdirSync(dir, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new UntrustedPathError(`${what}: cannot create ${dir}: ${(err as Error).message}`);
    created = false;
  }
  const st = fs.lstatSync(dir);
  if (created && st.isDirectory() && owners.includes(st.uid) && (st.mode & 0o7777) !== mode) {
    // The umask narrowed it; our own new directory under a checked parent: set what was asked.
    fs.chmodSync(dir, mode);
    return fs.lstatSync(dir);
  }
  return st;
}

/**
 * Makes sure `dir` is a directory the daemon may trust, creating it (and any missing parent) with
 * `mode` if it does not exist. Throws UntrustedPathError naming the path, the problem and the fix.
 */
export function ensureTrustedDirectory(dir: string, what: string, mode: number, owners: readonly number[] = trustedOwners()): void {
  const abs = path.resolve(dir);
  checkParents(abs, what, owners, mode);
  let st = lstatOrNull(abs);
  if (st === null) st = createDirectory(abs, mode, what, owners);
  checkLeaf(abs, st, what, 'directory', owners);
}

/** Reads a file the daemon may trust (its config): checked as a directory is, then opened without following a link. */
export function readTrustedFile(file: string, what: string, owners: readonly number[] = trustedOwners()): string {
  const abs = path.resolve(file);
  checkParents(abs, what, owners, undefined);
  const st = fs.lstatSync(abs);
  checkLeaf(abs, st, what, 'file', owners);
  const fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const opened = fs.fstatSync(fd);
    if (opened.ino !== st.ino || opened.dev !== st.dev) throw new UntrustedPathError(`${what} ${abs} was replaced while it was being checked; try again`);
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}
