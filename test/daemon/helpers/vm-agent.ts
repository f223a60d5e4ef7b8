// A process that plays a VM's unprivileged side (libvirt in a pod): the test registers this
// process as the VM's root, it spawns the "QEMU" targets as its children, and it sends requests
// over the request socket with the client library. Driven over IPC by vm-agent-handle.ts.
// Its targets die with it (children.ts), and it exits when the test process goes away.
import { CapgateApiError, CapgateRequestClient } from '../../../runtime/client/index.ts';
import { killChildrenNow, spawnChild } from '../../support/processes/children.ts';

export type AgentCommand =
  | { id: number; cmd: 'spawn-target' }
  | {
      id: number;
      cmd: 'requests';
      socketPath: string;
      targetPid: number;
      bytes: string;
      total: number;
      concurrency: number;
      collectIds: boolean;
    }
  | { id: number; cmd: 'exit' };

export interface RequestsReport {
  answered: number;
  decisions: Record<string, number>;
  /** `decision:reason` counts. */
  reasons: Record<string, number>;
  errorKinds: Record<string, number>;
  errorCount: number;
  errors: string[];
  ids: string[];
  /** Per-request latency in ms, in completion order. */
  latenciesMs: number[];
}

async function requests(c: Extract<AgentCommand, { cmd: 'requests' }>): Promise<RequestsReport> {
  // Each refusal is counted as it comes: the client never asks again by itself here.
  const client = new CapgateRequestClient({
    socketPath: c.socketPath,
    maxSockets: c.concurrency,
    timeoutMs: 60_000,
    retryWithinMs: 0,
  });
  const r: RequestsReport = {
    answered: 0,
    decisions: {},
    reasons: {},
    errorKinds: {},
    errorCount: 0,
    errors: [],
    ids: [],
    latenciesMs: [],
  };
  let next = 0;
  const bytes = c.bytes === 'unlimited' ? 'unlimited' : BigInt(c.bytes);
  const worker = async (): Promise<void> => {
    while (next < c.total) {
      next++;
      const t0 = performance.now();
      try {
        const d = await client.setMemlock(c.targetPid, bytes);
        r.latenciesMs.push(performance.now() - t0);
        r.answered++;
        r.decisions[d.decision] = (r.decisions[d.decision] ?? 0) + 1;
        const key = `${d.decision}:${d.reason}`;
        r.reasons[key] = (r.reasons[key] ?? 0) + 1;
        if (d.errorKind) r.errorKinds[d.errorKind] = (r.errorKinds[d.errorKind] ?? 0) + 1;
        if (c.collectIds) r.ids.push(d.decisionId);
      } catch (err) {
        r.errorCount++;
        if (r.errors.length < 10)
          r.errors.push(
            err instanceof CapgateApiError
              ? `${err.name} ${err.status} ${err.code} (retry after ${err.retryAfterS ?? '-'} s): ${err.message}`
              : err instanceof Error
                ? `${err.name}: ${err.message}`
                : String(err),
          );
        if (r.errorCount > 50) return; // the daemon is gone; stop hammering
      }
    }
  };
  await Promise.all(Array.from({ length: c.concurrency }, worker));
  client.close();
  return r;
}

process.on('message', (m: AgentCommand) => {
  const reply = (value: unknown): void => void process.send!({ id: m.id, value });
  if (m.cmd === 'spawn-target') {
    const child = spawnChild('sleep', ['600'], { stdio: 'ignore' });
    child.once('spawn', () => reply({ pid: child.pid }));
  } else if (m.cmd === 'requests') {
    void requests(m).then(reply, (err: unknown) => reply({ error: String(err) }));
  } else if (m.cmd === 'exit') {
    killChildrenNow();
    process.send!({ id: m.id, value: {} }, () => process.exit(0));
  }
});
// The test process went away without saying "exit" (the 'exit' handler kills the targets).
process.on('disconnect', () => process.exit(0));
process.send!({ id: 0, value: 'ready' });
