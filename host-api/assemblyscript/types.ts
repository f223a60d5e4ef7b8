// The contract's types (capgate:policy/types@1.0.0) as AssemblyScript sees them.
// Enum values are the WIT case indices: they are what crosses the boundary.

/** The privileged operation being requested (WIT `operation`). */
export enum Operation {
  SetMemlock = 0,
}

/** u64 max: "unlimited" (RLIM_INFINITY) for set-memlock. */
export const MEMLOCK_UNLIMITED: u64 = 0xffff_ffff_ffff_ffff;

/** One request. Pids and uid come from the kernel (peer credentials), never from the client. */
export class Request {
  constructor(
    public operation: Operation,
    public requesterPid: u32,
    public requesterUid: u32,
    public targetPid: u32,
    /** Requested RLIMIT_MEMLOCK in bytes; MEMLOCK_UNLIMITED means unlimited. */
    public bytes: u64,
  ) {}
}

/** A (key, value) label of a VM. */
export class Label {
  constructor(public key: string, public value: string) {}
}

/** What the trusted management layer registered for a VM (WIT `vm-identity`). */
export class VmIdentity {
  constructor(
    public uuid: string,
    public name: string,
    public id: i32,
    public labels: Label[],
  ) {}

  /** The value of the first label named `key`, or null when the VM has no such label. */
  label(key: string): string | null {
    for (let i = 0; i < this.labels.length; i++) {
      const l = unchecked(this.labels[i]);
      if (l.key == key) return l.value;
    }
    return null;
  }
}

/**
 * Why a capability refused (WIT `capability-error`), plus `None` for success.
 * `None` is SDK-only (never on the wire): it lets `setMemlock` return one plain value.
 */
export enum CapabilityError {
  None = -1,
  NotPermitted = 0,
  NoSuchProcess = 1,
  OutOfScope = 2,
  InvalidArgument = 3,
  QuotaExceeded = 4,
  Internal = 5,
}

/** The WIT name of an error (`not-permitted`, ...), as reasons and logs spell it; "none" for None. */
export function capabilityErrorName(e: CapabilityError): string {
  switch (e) {
    case CapabilityError.None: return "none";
    case CapabilityError.NotPermitted: return "not-permitted";
    case CapabilityError.NoSuchProcess: return "no-such-process";
    case CapabilityError.OutOfScope: return "out-of-scope";
    case CapabilityError.InvalidArgument: return "invalid-argument";
    case CapabilityError.QuotaExceeded: return "quota-exceeded";
    default: return "internal";
  }
}

/** Severity of a log line (WIT `log-level`). */
export enum LogLevel {
  Debug = 0,
  Info = 1,
  Warn = 2,
  Error = 3,
}
