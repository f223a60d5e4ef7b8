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
    throw new UntrustedPathError(
      `${what} ${p} is a symlink; capgate does not follow a symlink here, since whoever can change it chooses where root writes. Fix: use the real ${kind} it points to, after checking who owns it`,
    );
  }
  if (kind === 'directory' ? !st.isDirectory() : !st.isFile())
    throw new UntrustedPathError(`${what} ${p} is not a ${kind}. Fix: remove it, or choose another path`);
  if (!owners.includes(st.uid)) {
    throw new UntrustedPathError(
      `${what} ${p} is owned by uid ${st.uid}, not by ${ownerText(owners)}: that user could have put anything in it. Fix: ${kind === 'directory' ? `remove it (capgate creates it afresh) or, if you trust what is in it, \`chown -R root ${p}\`` : `check its contents, then \`chown root ${p}\``}`,
    );
  }
  const w = writers(st.mode);
  if (w !== null)
    throw new UntrustedPathError(`${what} ${p} is writable by ${w} (mode ${octal(st.mode)}). Fix: \`chmod go-w ${p}\``);
}

/**
 * Walks the parents of `target` (an absolute path) from `/` down, checking each; a missing one is
 * created with `createMode` when given (else refused). Symlinks owned by a trusted uid are
 * followed and their targets checked the same way.
 */
function checkParents(
  target: string,
  what: string,
  owners: readonly number[],
  createMode: number | undefined,
  budget = { symlinks: MAX_SYMLINKS },
): void {
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
        throw new UntrustedPathError(
          `${what}: ${next} on its path is a symlink owned by uid ${st.uid}, not by ${ownerText(owners)}, so that user chooses where it leads. Fix: use the path it points to, or remove the link`,
        );
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
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new UntrustedPathError(`${what}: cannot create ${dir}: ${(err as Error).message}`);
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
export function ensureTrustedDirectory(
  dir: string,
  what: string,
  mode: number,
  owners: readonly number[] = trustedOwners(),
): void {
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
    if (opened.ino !== st.ino || opened.dev !== st.dev)
      throw new UntrustedPathError(`${what} ${abs} was replaced while it was being checked; try again`);
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether `p` is on a read-only mount (access(2) answers EROFS to root there, whatever the mode bits say). */
function onReadOnlyMount(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.W_OK);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EROFS';
  }
}

/** Where a policy directory's files are read from, and why its modes may be trusted. */
export interface TrustedDataDirectory {
  /** The real directory holding the files: the target of `..data`, or the directory itself. */
  dataDir: string;
  /** The name `..data` pointed to (kubelet layout), or null. */
  generation: string | null;
  /** On a read-only mount: nobody can write it, whatever the mode bits say. */
  readOnly: boolean;
}

/**
 * A directory of files root will load (the policy directory), as a kubelet-mounted ConfigMap,
 * Secret or image volume lays it out, or as a plain directory. Its parents are checked as any
 * trusted path's. The directory itself must be owned by a trusted uid; it may be writable by
 * others only when nobody can use that: on a read-only mount, or sticky and root-owned (a
 * ConfigMap volume is drwxrwxrwt: others could add files of their own, never replace root's).
 * With `..data` (the kubelet's atomic swap), the files are read from the directory it names,
 * once resolved, so one read sees one generation; `..data` must be a link owned by a trusted uid
 * to a sibling, and that sibling a trusted directory.
 */
export function trustedDataDirectory(
  dir: string,
  what: string,
  owners: readonly number[] = trustedOwners(),
): TrustedDataDirectory {
  const abs = path.resolve(dir);
  checkParents(abs, what, owners, undefined);
  const st = fs.lstatSync(abs);
  const readOnly = onReadOnlyMount(abs);
  const sticky = st.uid === 0 && (st.mode & STICKY) !== 0;
  if (st.isDirectory() && (readOnly || sticky)) {
    if (!owners.includes(st.uid)) checkLeaf(abs, st, what, 'directory', owners);
  } else {
    checkLeaf(abs, st, what, 'directory', owners);
  }
  const link = lstatOrNull(path.join(abs, '..data'));
  if (link === null) return { dataDir: abs, generation: null, readOnly };
  if (!link.isSymbolicLink())
    throw new UntrustedPathError(
      `${what}: ${abs}/..data is not a symlink; in a kubelet volume it links to the current generation (..<timestamp>). Fix: remove it, or lay the directory out as the kubelet does`,
    );
  if (!owners.includes(link.uid))
    throw new UntrustedPathError(
      `${what}: ${abs}/..data is owned by uid ${link.uid}, not by ${ownerText(owners)}, so that user chooses which files root loads. Fix: remove it`,
    );
  const target = fs.readlinkSync(path.join(abs, '..data'));
  if (target.includes('/') || target === '.' || target === '..' || !target.startsWith('..')) {
    throw new UntrustedPathError(
      `${what}: ${abs}/..data points to "${target.slice(0, 80)}", not to a sibling "..<timestamp>" directory as the kubelet writes it. Fix: point it at a directory beside it`,
    );
  }
  const dataDir = path.join(abs, target);
  const dst = fs.lstatSync(dataDir);
  if (!(readOnly && dst.isDirectory() && owners.includes(dst.uid)))
    checkLeaf(dataDir, dst, `${what} (the generation ..data points to)`, 'directory', owners);
  return { dataDir, generation: target, readOnly };
}

/**
 * Reads one file of a trusted data directory: a regular file (not a link), owned by a trusted
 * uid, writable by nobody else (unless on a read-only mount), at most `maxBytes`.
 */
export function readTrustedEntry(
  data: TrustedDataDirectory,
  name: string,
  what: string,
  maxBytes: number,
  owners: readonly number[] = trustedOwners(),
): Buffer {
  const file = path.join(data.dataDir, name);
  const st = fs.lstatSync(file);
  if (!(data.readOnly && st.isFile() && owners.includes(st.uid))) checkLeaf(file, st, what, 'file', owners);
  if (st.size > maxBytes)
    throw new UntrustedPathError(`${what} ${file} is ${st.size} bytes, more than the ${maxBytes} allowed`);
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const opened = fs.fstatSync(fd);
    if (opened.ino !== st.ino || opened.dev !== st.dev)
      throw new UntrustedPathError(
        `${what} ${file} was replaced while it was being checked; it is read again at the next change`,
      );
    const buf = Buffer.alloc(Math.min(opened.size, maxBytes) + 1);
    let n = 0;
    for (let r = 1; r > 0 && n < buf.length; n += r) r = fs.readSync(fd, buf, n, buf.length - n, n);
    if (n > maxBytes) throw new UntrustedPathError(`${what} ${file} grew beyond ${maxBytes} bytes while it was read`);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}
