// What searching /proc for a translated target may cost the daemon's main thread, which every VM
// shares. A search reads NSpid of every candidate process (/proc/<pid>/status: 15 µs each here,
// more on a loaded node; a node has hundreds to thousands of processes), so it is priced, in
// processes read (a count, not a time: the price does not rise with the machine's load). Each VM
// has a bucket, and all VMs together another, refilled with time. A search starts only while both
// hold some, and is charged what it read after. Legitimate use costs little (libvirt names itself
// between fork and exec: no search; a QEMU once found is cached while it lives); a requester that
// keeps sending numbers naming nothing empties its VM's bucket and is denied until it refills.
export interface BucketSize {
  /** Processes read at once when the bucket is full (the burst). */
  capacity: number;
  /** Processes added per second. */
  refillPerS: number;
}

/** A VM: 8192 reads at once (a few searches of a busy node), 1024 a second after that (~15 ms). */
export const PER_VM_SEARCH: BucketSize = { capacity: 8192, refillPerS: 1024 };
/** Every VM together: 32768 at once, 4096 a second (~60 ms of a second's main thread). */
export const ALL_VMS_SEARCH: BucketSize = { capacity: 32_768, refillPerS: 4096 };

class Bucket {
  private level_: number;
  private at: number;
  constructor(
    private readonly size: BucketSize,
    now: number,
  ) {
    this.level_ = size.capacity;
    this.at = now;
  }
  level(now: number): number {
    this.level_ = Math.min(this.size.capacity, this.level_ + ((now - this.at) / 1000) * this.size.refillPerS);
    this.at = now;
    return this.level_;
  }
  charge(reads: number, now: number): void {
    this.level(now);
    this.level_ -= reads;
  }
  full(now: number): boolean {
    return this.level(now) >= this.size.capacity;
  }
}

export class SearchBudget {
  private readonly vms = new Map<string, Bucket>();
  private readonly all: Bucket;

  constructor(
    private readonly perVm: BucketSize = PER_VM_SEARCH,
    private readonly allVms: BucketSize = ALL_VMS_SEARCH,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.all = new Bucket(allVms, now());
  }

  /** Null when `vm` may search now; otherwise why not. */
  refusal(vm: string): string | null {
    const t = this.now();
    if ((this.vms.get(vm)?.level(t) ?? 1) <= 0) {
      return `this VM's requests made the daemon read more than ${this.perVm.capacity} processes of /proc lately (${this.perVm.refillPerS} a second are allowed); retry in a second`;
    }
    if (this.all.level(t) <= 0)
      return `the daemon read more than ${this.allVms.capacity} processes of /proc for all VMs' targets lately; retry in a second`;
    return null;
  }

  /** Charges `reads` processes read to `vm` and to all VMs. */
  charge(vm: string, reads: number): void {
    const t = this.now();
    let bucket = this.vms.get(vm);
    if (bucket === undefined) {
      bucket = new Bucket(this.perVm, t);
      this.vms.set(vm, bucket);
    }
    bucket.charge(reads, t);
    this.all.charge(reads, t);
    // Full buckets hold nothing worth keeping: the map stays as small as the VMs searching lately.
    for (const [key, b] of this.vms) if (key !== vm && b.full(t)) this.vms.delete(key);
  }
}
