// What each thread of a process holds, from /proc/<pid>/task/<tid>/status: capabilities,
// no_new_privs and its seccomp mode are per thread in Linux, and /proc/<pid>/status shows only
// the main thread's.
import { readdirSync, readFileSync } from 'node:fs';

export interface ThreadCredentials {
  tid: number;
  capEff: bigint;
  capPrm: bigint;
  capInh: bigint;
  capAmb: bigint;
  capBnd: bigint;
  noNewPrivs: boolean;
  /** 0 none, 1 strict, 2 filter. */
  seccomp: number;
}

function field(status: string, name: string): string | undefined {
  return new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(status)?.[1];
}

/** One thread's; undefined if it ended meanwhile. Throws if the kernel reports no such field. */
export function threadCredentials(pid: number | 'self', tid: number): ThreadCredentials | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const need = (name: string): string => {
    const v = field(status, name);
    if (v === undefined) throw new Error(`/proc/${pid}/task/${tid}/status has no ${name} field (kernel too old?)`);
    return v;
  };
  const cap = (name: string): bigint => BigInt(`0x${need(name)}`);
  return {
    tid,
    capEff: cap('CapEff'),
    capPrm: cap('CapPrm'),
    capInh: cap('CapInh'),
    capAmb: cap('CapAmb'),
    capBnd: cap('CapBnd'),
    noNewPrivs: need('NoNewPrivs') === '1',
    // A kernel built without seccomp has no Seccomp line: mode 0.
    seccomp: Number(field(status, 'Seccomp') ?? 0),
  };
}

/** Every thread's (those that end while this reads are left out). */
export function processThreadCredentials(pid: number | 'self'): ThreadCredentials[] {
  const out: ThreadCredentials[] = [];
  for (const name of readdirSync(`/proc/${pid}/task`)) {
    const c = threadCredentials(pid, Number(name));
    if (c !== undefined) out.push(c);
  }
  return out;
}

/** Whether the thread holds any capability it could use or pass on (the bounding set only limits). */
export function holdsCapabilities(c: ThreadCredentials): boolean {
  return (c.capEff | c.capPrm | c.capInh | c.capAmb) !== 0n;
}

/**
 * The first thread of `pid` that holds a capability, lacks no_new_privs or has no seccomp filter,
 * said in words; undefined when every thread is confined.
 */
export function unconfinedThread(pid: number | 'self'): string | undefined {
  const threads = processThreadCredentials(pid);
  if (threads.length === 0) return `process ${pid} has no thread left to check`;
  for (const t of threads) {
    if (holdsCapabilities(t))
      return `thread ${t.tid} still holds capabilities (CapEff ${t.capEff.toString(16)}, CapPrm ${t.capPrm.toString(16)}, CapInh ${t.capInh.toString(16)}, CapAmb ${t.capAmb.toString(16)})`;
    if (!t.noNewPrivs) return `thread ${t.tid} lacks no_new_privs`;
    if (t.seccomp !== 2) return `thread ${t.tid} has no seccomp filter (Seccomp: ${t.seccomp})`;
  }
  return undefined;
}
