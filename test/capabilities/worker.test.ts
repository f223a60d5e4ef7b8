// The engine creates Linux capabilities inside worker threads: koffi must load and work there.
import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import type { RegisteredVm } from '../../runtime/identity/vm.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import { memlockFromProc, spawnShell } from '../identity/support/processes.ts';

describe('Linux capabilities in a worker thread', () => {
  it('sets memlock and answers identity from inside a worker', async () => {
    const target = spawnShell('sleep 300');
    const scope: RegisteredVm = {
      identity: { uuid: '3f2b8c1e-9d4a-4b6e-8f10-2a7c5e9d0b13', name: 'vm', id: 1, labels: [] },
      anchor: { rootPid: target.pid, rootStartTime: readStartTime(target.pid)! },
    };
    // The worker loads the TypeScript entry through tsx, as the engine's workers do under tsx.
    const entry = new URL('./support/worker-set-memlock.ts', import.meta.url).href;
    const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
    const worker = new Worker(boot, { eval: true, workerData: { scope, pid: target.pid, bytes: 12288n } });
    const [result] = (await once(worker, 'message')) as [unknown];
    await worker.terminate();
    expect(result).toMatchObject({ set: { ok: true }, identity: scope.identity });
    expect(memlockFromProc(target.pid)).toEqual({ soft: 12288n, hard: 12288n });
  });
});
