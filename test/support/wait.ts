// Waiting for the event a test needs, never for a guessed amount of time: a condition polled
// until it holds, or a child's output until it shows a pattern. Each has an overall budget
// that fails with what was awaited (and what was seen), well inside vitest's test timeout, so a
// hang reads as a message rather than a timeout. The budgets only bound a wait that should end
// far sooner; a loaded machine makes waits longer, never wrong.
import type { ChildProcess } from 'node:child_process';

/** Default budget of a wait: half the suite's 60 s test timeout. */
export const WAIT_BUDGET_MS = 30_000;

export interface WaitOptions {
  timeoutMs?: number;
  /** Between polls of a condition that has no event to wait on (/proc, a database, a file). */
  intervalMs?: number;
}

/**
 * Polls `probe` until it returns something other than undefined, and returns that. `what` names
 * the awaited event in the failure (a function: read at the failure, e.g. to show the state).
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string | (() => string),
  o: WaitOptions = {},
): Promise<T> {
  const timeoutMs = o.timeoutMs ?? WAIT_BUDGET_MS;
  const until = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > until)
      throw new Error(`gave up waiting for ${typeof what === 'string' ? what : what()} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 20));
  }
}

/** Resolves once `condition()` holds. */
export function waitUntil(condition: () => boolean, what: string | (() => string), o: WaitOptions = {}): Promise<void> {
  return waitFor(() => (condition() ? true : undefined), what, o).then(() => undefined);
}

/** Everything a child printed (stdout and stderr, interleaved as received), and waits on it. */
export class ChildOutput {
  private text = '';
  private readonly waiters = new Set<() => void>();
  private exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(readonly child: ChildProcess) {
    const add = (d: Buffer): void => {
      this.text += d.toString();
      for (const w of this.waiters) w();
    };
    child.stdout?.on('data', add);
    child.stderr?.on('data', add);
    child.once('exit', (code, signal) => {
      this.exit = { code, signal };
      for (const w of this.waiters) w();
    });
  }

  get all(): string {
    return this.text;
  }

  /** Drops what was printed so far (the next wait sees only what follows). */
  clear(): void {
    this.text = '';
  }

  /**
   * Resolves with the first match of `pattern` in the output (what is there now, or what
   * comes); rejects if the child exits first or the budget runs out.
   */
  until(pattern: RegExp | string, what = String(pattern), timeoutMs = WAIT_BUDGET_MS): Promise<RegExpExecArray> {
    const re = typeof pattern === 'string' ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : pattern;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = re.exec(this.text);
        if (m !== null) return done(() => resolve(m));
        if (this.exit !== null)
          return done(() =>
            reject(
              new Error(
                `the child exited (code ${this.exit!.code}, signal ${this.exit!.signal}) before printing ${what}; it printed:\n${this.text}`,
              ),
            ),
          );
      };
      const timer = setTimeout(
        () =>
          done(() =>
            reject(
              new Error(`gave up waiting ${timeoutMs} ms for the child to print ${what}; it printed:\n${this.text}`),
            ),
          ),
        timeoutMs,
      );
      const done = (settle: () => void): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }
}
