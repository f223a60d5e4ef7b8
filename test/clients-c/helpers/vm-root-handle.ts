// The test's side of a VM root process (see vm-root.ts).
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from '../../daemon/helpers/daemon-process.ts';
import { memlockOf, waitFor } from '../../daemon/helpers/fixtures.ts';
import type { RunResult, VmRootCommand } from './vm-root.ts';
import { forkChild } from '../../support/processes/children.ts';

const AGENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'vm-root.ts');
const BOOTSTRAP = path.join(REPO_ROOT, 'runtime/bootstrap/register.mjs');

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export class VmRoot {
  private seq = 1;
  private readonly waiting = new Map<number, (v: unknown) => void>();

  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: { id: number; value: unknown }) => {
      this.waiting.get(m.id)?.(m.value);
      this.waiting.delete(m.id);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async start(): Promise<VmRoot> {
    const child = forkChild(AGENT, [], { execArgv: ['--import', BOOTSTRAP] });
    const agent = new VmRoot(child);
    await new Promise<void>((resolve, reject) => {
      agent.waiting.set(0, () => resolve());
      child.once('exit', (code) => reject(new Error(`the VM root exited with ${code} before it was ready`)));
    });
    return agent;
  }

  private call<T>(cmd: WithoutId<VmRootCommand>): Promise<T> {
    const id = this.seq++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, (v) => resolve(v as T));
      this.child.send({ ...cmd, id }, (err) => err && reject(err));
    });
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

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    await this.call({ cmd: 'exit' }).catch(() => this.child.kill('SIGKILL'));
    await exited;
  }
}
