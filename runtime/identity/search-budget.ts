// What searching /proc for a translated target may cost the daemon's main thread, which every VM
// shares. A search reads NSpid of every candidate process (tens of µs each; a node has hundreds
// to thousands), so it is priced: each VM has a bucket of milliseconds, and all VMs together
// another, refilled with time. A search starts only while both hold time, and is charged what it
// took after. Legitimate use costs little (libvirt names itself between fork and exec: no search;
// a QEMU once found is cached while it lives); a requester that keeps sending numbers naming
// nothing spends its own VM's bucket and is then denied until it refills.
export interface BucketSize {
  /** Milliseconds of search the bucket holds when full (the burst). */
  capacityMs: number;
  /** Milliseconds added per second. */
  refillMsPerS: number;
}

/** A VM: 100 ms at once, 20 ms per second (2% of the main thread) after that. */
export const PER_VM_SEARCH: BucketSize = { capacityMs: 100, refillMsPerS: 20 };
/** Every VM together: 250 ms at once, 100 ms per second (10%). */
export const ALL_VMS_SEARCH: BucketSize = { capacityMs: 250, refillMsPerS: 100 };

class Bucket {
  private ms: number;
  private at: number;
  constructor(
    private readonly size: BucketSize,
    now: number,
  ) {
    this.ms = size.capacityMs;
    this.at = now;
  }
  level(now: number): number {
    this.ms = Math.min(this.size.capacityMs, this.ms + ((now - this.at) / 1000) * this.size.refillMsPerS);
    this.at = now;
    return this.ms;
  }
  charge(ms: number, now: number): void {
    this.level(now);
    this.ms -= ms;
  }
  full(now: number): boolean {
    return this.level(now) >= this.size.capacityMs;
  }
}

export class SearchBudget {
  private readonly vms = new Map<string, Bucket>();
  private readonly all: Bucket;

  constructor(
    private readonly perVm: BucketSize = PER_VM_SEARCH,
    allVms: BucketSize = ALL_VMS_SEARCH,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.all = new Bucket(allVms, now());
  }

  /** Null when `vm` may search now; otherwise why not. */
  refusal(vm: string): string | null {
    const t = this.now();
    if ((this.vms.get(vm)?.level(t) ?? 1) <= 0) return `this VM's requests made the daemon search /proc for more than ${this.perVm.capacityMs} ms lately (${this.perVm.refillMsPerS} ms per second are allowed); retry in a second`;
    if (this.all.level(t) <= 0) return 'the daemon has searched /proc for targets of all VMs for its whole budget lately; retry in a second';
    return null;
  }

  charge(vm: string, ms: number): void {
    const t = this.now();
    let bucket = this.vms.get(vm);
    if (bucket === undefined) {
      bucket = new Bucket(this.perVm, t);
      this.vms.set(vm, bucket);
    }
    bucket.charge(ms, t);
    this.all.charge(ms, t);
    // Full buckets hold nothing worth keeping: the map stays as small as the VMs searching lately.
    for (const [key, b] of this.vms) if (key !== vm && b.full(t)) this.vms.delete(key);
  }
}
