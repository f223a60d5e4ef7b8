// File descriptors a process inherited from whoever started it. Node opens every descriptor of
// its own close-on-exec (its stdio included), so one without the flag came through execve: from
// systemd, a shell, a parent that leaked it.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { errnoName } from './errno.ts';
import { libc } from './libc.ts';

/** O_CLOEXEC as /proc/<pid>/fdinfo/<fd> "flags:" shows the descriptor's close-on-exec flag (octal). */
const O_CLOEXEC = 0o2000000;

export interface OpenFd {
  fd: number;
  /** The /proc/self/fd link: a path, socket:[inode], anon_inode:[io_uring]... */
  target: string;
  closeOnExec: boolean;
}

/** This process's open descriptors (the listing's own left out). */
export function openFds(): OpenFd[] {
  const out: OpenFd[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (flags === undefined) continue;
      out.push({ fd, target, closeOnExec: (Number.parseInt(flags, 8) & O_CLOEXEC) !== 0 });
    } catch {
      // the directory listing's own descriptor, closed by now
    }
  }
  return out;
}

/** Closes every descriptor without close-on-exec but `keep`; returns them. Throws if one cannot be. */
export function closeInheritedFds(keep: readonly number[]): OpenFd[] {
  const closed = openFds().filter((f) => !f.closeOnExec && !keep.includes(f.fd));
  for (const f of closed) {
    const r = libc().close(f.fd);
    if (!r.ok) throw new Error(`close(${f.fd}) of inherited ${f.target} failed with ${errnoName(r.errno)}`);
  }
  return closed;
}

const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;

/** Marks `fd` close-on-exec: a process this one starts does not inherit it. Throws if fcntl fails. */
export function setCloseOnExec(fd: number): void {
  const c = libc();
  const flags = c.fcntl(fd, F_GETFD, 0);
  if (!flags.ok) throw new Error(`fcntl(${fd}, F_GETFD) failed with ${errnoName(flags.errno)}`);
  const r = c.fcntl(fd, F_SETFD, flags.value | FD_CLOEXEC);
  if (!r.ok) throw new Error(`fcntl(${fd}, F_SETFD) failed with ${errnoName(r.errno)}`);
}
