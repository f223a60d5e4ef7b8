// Which pid namespace a process is in, told without ptrace access (a daemon holding only
// CAP_SYS_RESOURCE and CAP_KILL cannot read /proc/<pid>/ns/pid of another uid's process).
//
// A process's parent is in the same pid namespace or in an ancestor one (fork keeps the
// namespace; CLONE_NEWPID, unshare and setns only put children one level down or into a
// descendant; a reparented orphan goes to a reaper of its own namespace). So while the parent
// chain stays at the same depth (the length of NSpid) it stays in the same namespace, and the
// first process whose parent is shallower is the top of that chain: the namespace's init for
// everything forked inside it. Two processes at the same depth whose chains end at the same top
// process (pid and start time) are in the same namespace. The converse does not hold (a process
// that joined with setns, e.g. `kubectl exec`, is a top of its own), so a caller that needs
// "same namespace" gets false negatives there, never false positives: it fails closed.
import { Lineage, MAX_ANCESTRY_DEPTH } from './lineage.ts';
import { readNsPid } from '../os/proc-nspid.ts';
import { readStartTime } from '../os/proc-stat.ts';

export interface NamespacePosition {
  /** The process itself, pinned by its start time. */
  self: { pid: number; startTime: number };
  /** The process's NSpid as read (index 0: the daemon's namespace). */
  nsPids: number[];
  /** The top of its chain in its namespace (see above), named by pid and start time. */
  top: { pid: number; startTime: number };
}

/** NSpid of `pid`, but only if `pid` still names the process that had `startTime` after the read. */
function nsPidsOf(pid: number, startTime: number): number[] | null {
  const nsPids = readNsPid(pid);
  return nsPids !== null && readStartTime(pid) === startTime ? nsPids : null;
}

/**
 * Where `pid` is among pid namespaces, or null when that cannot be told for sure (the process or
 * an ancestor exited while we read, the chain is deeper than MAX_ANCESTRY_DEPTH, NSpid missing).
 * `startTime` (optional): the start time the caller pinned `pid` by; a different process is null.
 */
export function namespacePosition(pid: number, startTime?: number): NamespacePosition | null {
  const lineage = Lineage.of(pid);
  if (lineage === null || (startTime !== undefined && lineage.self.startTime !== startTime)) return null;
  const nsPids = nsPidsOf(pid, lineage.self.startTime);
  if (nsPids === null) return null;
  const depth = nsPids.length;
  const self = { pid, startTime: lineage.self.startTime };
  const position = (top: { pid: number; startTime: number }): NamespacePosition => ({
    self,
    nsPids,
    top: { pid: top.pid, startTime: top.startTime },
  });
  for (let d = 0; d <= MAX_ANCESTRY_DEPTH; d++) {
    const p = lineage.at(d);
    if (p === null) return null;
    if (p.ppid === 0) return position(p); // init of the daemon's namespace
    const parent = lineage.at(d + 1);
    if (parent === null) return null; // the parent exited (or its pid was reused) while we walked
    const parentNsPids = nsPidsOf(parent.pid, parent.startTime);
    if (parentNsPids === null || parentNsPids.length > depth) return null;
    if (parentNsPids.length < depth) return position(p);
  }
  return null;
}
