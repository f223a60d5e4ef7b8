// The test's side of a Node agent process it drives over IPC (a VM's root, a VM's client): numbered
// commands, one answer each; the agent's answer 0 says it is ready.
import type { ChildProcess } from 'node:child_process';

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export class IpcAgent<Command extends { id: number }> {
  private seq = 1;
  private readonly waiting = new Map<number, (v: unknown) => void>();

  protected constructor(readonly child: ChildProcess) {
    child.on('message', (m: { id: number; value: unknown }) => {
      this.waiting.get(m.id)?.(m.value);
      this.waiting.delete(m.id);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves once the agent said it is ready; rejects if it exits first. */
  protected ready(what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(0, () => resolve());
      this.child.once('exit', (code) => reject(new Error(`${what} exited with ${code} before it was ready`)));
    });
  }

  protected call<T>(cmd: WithoutId<Command>): Promise<T> {
    return this.send<T>(cmd);
  }

  private send<T>(cmd: object): Promise<T> {
    const id = this.seq++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, (v) => resolve(v as T));
      this.child.send({ ...cmd, id }, (err) => err && reject(err));
    });
  }

  /** Asks the agent to exit (its own children go with it), or kills it if it cannot be asked. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    await this.send({ cmd: 'exit' }).catch(() => this.child.kill('SIGKILL'));
    await exited;
  }
}
