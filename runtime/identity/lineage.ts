// A process and its ancestors as /proc reports them, read lazily and at most once each, so that
// checking one pid against many registered VMs costs one walk, not one walk per VM.
import { readCgroupPath } from '../os/host-cgroup-path.ts';
import { readProcStat, type ProcStat } from '../os/proc-stat.ts';

/** Deeper than any real launcher -> QEMU chain; bounds the work a hostile process tree can cause. */
export const MAX_ANCESTRY_DEPTH = 64;

export class Lineage {
  private readonly chain: ProcStat[];
  private ended = false;
  private cgroupPath: string | null | undefined;

  private constructor(self: ProcStat) {
    this.chain = [self];
  }

  /** null when `pid` does not exist. `known`: a stat of `pid` the caller already read. */
  static of(pid: number, known?: ProcStat): Lineage | null {
    const self = known !== undefined && known.pid === pid ? known : readProcStat(pid);
    return self === null ? null : new Lineage(self);
  }

  get self(): ProcStat {
    return this.chain[0]!;
  }

  /**
   * The ancestor `depth` levels up (0 = the process itself), or null past the top. The walk
   * ends at pid 1 / kernel threads (ppid 0), after MAX_ANCESTRY_DEPTH, or where a parent
   * started after its child — the sign that the parent pid was reused while we walked.
   */
  at(depth: number): ProcStat | null {
    while (this.chain.length <= depth && !this.ended) {
      const last = this.chain[this.chain.length - 1]!;
      const parent = last.ppid > 0 && this.chain.length <= MAX_ANCESTRY_DEPTH ? readProcStat(last.ppid) : null;
      if (parent === null || parent.startTime > last.startTime) this.ended = true;
      else this.chain.push(parent);
    }
    return this.chain[depth] ?? null;
  }

  /** The process's cgroup v2 path (read once). */
  cgroup(): string | null {
    if (this.cgroupPath === undefined) this.cgroupPath = readCgroupPath(this.self.pid);
    return this.cgroupPath;
  }
}
