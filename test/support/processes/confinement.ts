// What a confined helper process (the compile launcher, a compile process) looks like in /proc:
// more than one thread (V8's platform threads, not only the main one), and on every one of them
// no capability in any set, no_new_privs, and a seccomp filter (mode 2).
import { expect } from 'vitest';
import { processThreadCredentials } from '../../../runtime/os/thread-credentials.ts';

export function expectEveryThreadConfined(pid: number): void {
  const threads = processThreadCredentials(pid);
  expect(threads.length).toBeGreaterThan(1);
  for (const t of threads)
    expect([t.tid, t.capEff, t.capPrm, t.capInh, t.capAmb, t.noNewPrivs, t.seccomp]).toEqual([
      t.tid,
      0n,
      0n,
      0n,
      0n,
      true,
      2,
    ]);
}
