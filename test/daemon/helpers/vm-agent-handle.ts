// The test's side of a VM agent process (see vm-agent.ts).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentCommand, BurstAnswer, RequestsReport } from './vm-agent.ts';
import { forkChild, spawnChild } from '../../support/processes/children.ts';
import { IpcAgent } from '../../support/processes/ipc-agent.ts';

const AGENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'vm-agent.ts');

export class VmAgent extends IpcAgent<AgentCommand> {
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
    await agent.ready('vm agent');
    return agent;
  }

  async spawnTarget(): Promise<number> {
    return (await this.call<{ pid: number }>({ cmd: 'spawn-target' })).pid;
  }

  /** One request, answered: its reason (`allow:`, `deny:<reason>`) and decision id. Throws if it was not answered. */
  async requestOnce(
    socketPath: string,
    targetPid: number,
    bytes: bigint | 'unlimited',
  ): Promise<{ reason: string; id: string }> {
    const r = await this.requests({ socketPath, targetPid, bytes, total: 1, concurrency: 1, collectIds: true });
    if (r.errors.length > 0) throw new Error(`the request was not answered: ${r.errors.join('; ')}`);
    return { reason: Object.keys(r.reasons)[0]!, id: r.ids[0]! };
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

  /** Opens `connections` kept connections to the request socket for burst(). */
  async openBurst(socketPath: string, connections: number): Promise<void> {
    failed(await this.call<{ error?: string }>({ cmd: 'burst-open', socketPath, connections }));
  }

  /** Writes one request on each burst connection; resolves once every one is in the daemon's receive queue. */
  async sendBurst(targetPid: number, bytes: bigint): Promise<void> {
    failed(await this.call<{ error?: string }>({ cmd: 'burst-send', targetPid, bytes: String(bytes) }));
  }

  /** The burst's answers, one per connection. */
  async burstAnswers(): Promise<BurstAnswer[]> {
    const r = await this.call<BurstAnswer[] | { error: string }>({ cmd: 'burst-answers' });
    if (!Array.isArray(r)) throw new Error(`the burst was not answered: ${r.error}`);
    return r;
  }
}

function failed(r: { error?: string }): void {
  if (r.error !== undefined) throw new Error(r.error);
}
