// The test's side of a VM agent process (see vm-agent.ts).
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentCommand, RequestsReport } from './vm-agent.ts';
import { forkChild, spawnChild } from '../../support/processes/children.ts';

const AGENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'vm-agent.ts');

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export class VmAgent {
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

  /**
   * `wrap`: a command that execs the agent, e.g. ['unshare', '--pid', '--fork', '--kill-child']
   * (the agent is then pid 1 of a new pid namespace; its IPC channel is inherited through it).
   */
  static async start(options: { uid?: number; gid?: number; wrap?: string[] } = {}): Promise<VmAgent> {
    const { wrap, ...ids } = options;
    const child =
      wrap === undefined
        ? forkChild(AGENT, [], { execArgv: ['--import', 'tsx'], ...ids })
        : spawnChild(wrap[0]!, [...wrap.slice(1), process.execPath, '--import', 'tsx', AGENT], {
            stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
            ...ids,
          });
    const agent = new VmAgent(child);
    await new Promise<void>((resolve, reject) => {
      agent.waiting.set(0, () => resolve());
      child.once('exit', (code) => reject(new Error(`vm agent exited with ${code} before it was ready`)));
    });
    return agent;
  }

  private call<T>(cmd: WithoutId<AgentCommand>): Promise<T> {
    const id = this.seq++;
    return new Promise<T>((resolve) => {
      this.waiting.set(id, (v) => resolve(v as T));
      this.child.send({ ...cmd, id });
    });
  }

  async spawnTarget(): Promise<number> {
    return (await this.call<{ pid: number }>({ cmd: 'spawn-target' })).pid;
  }

  requests(o: {
    socketPath: string;
    targetPid: number;
    bytes: bigint | 'unlimited';
    total: number;
    concurrency: number;
    collectIds?: boolean;
  }): Promise<RequestsReport> {
    return this.call<RequestsReport>({
      cmd: 'requests',
      ...o,
      bytes: String(o.bytes),
      collectIds: o.collectIds ?? false,
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    await this.call({ cmd: 'exit' }).catch(() => undefined);
    await exited;
  }
}
