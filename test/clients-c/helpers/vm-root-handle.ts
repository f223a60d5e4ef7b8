// The test's side of a VM root process (see vm-root.ts).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from '../../daemon/helpers/daemon-process.ts';
import { memlockOf, waitFor } from '../../daemon/helpers/fixtures.ts';
import type { RunResult, VmRootCommand } from './vm-root.ts';
import { forkChild } from '../../support/processes/children.ts';
import { IpcAgent } from '../../support/processes/ipc-agent.ts';

const AGENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'vm-root.ts');
const BOOTSTRAP = path.join(REPO_ROOT, 'runtime/bootstrap/register.mjs');

export class VmRoot extends IpcAgent<VmRootCommand> {
  static async start(): Promise<VmRoot> {
    const agent = new VmRoot(forkChild(AGENT, [], { execArgv: ['--import', BOOTSTRAP] }));
    await agent.ready('the VM root');
    return agent;
  }

  /** A root-owned process in the VM (its "QEMU") with RLIMIT_MEMLOCK soft:hard, once it has them. */
  async spawnTarget(soft: bigint, hard: bigint): Promise<number> {
    const { pid } = await this.call<{ pid: number }>({ cmd: 'spawn-target', soft: String(soft), hard: String(hard) });
    await waitFor(() => {
      const m = memlockOf(pid);
      return m.soft === String(soft) && m.hard === String(hard) ? true : undefined;
    }, `the memlock limits of target ${pid}`);
    return pid;
  }

  /** Runs a command inside the VM and waits for it. */
  run(argv: string[], env: Record<string, string>): Promise<RunResult> {
    return this.call<RunResult>({ cmd: 'run', argv, env });
  }

  kill(pid: number): Promise<void> {
    return this.call({ cmd: 'kill', pid });
  }
}
