// Every process the suite starts carries a marker in its environment, inherited by whatever it
// starts in turn: CAPGATE_TEST_RUN, a comma-separated list of tokens, "<run id>" for the vitest
// run and "<run id>@<test file>" for the test file that started it. /proc/<pid>/environ shows
// the environment a process was started with, so the marker survives double forks, setsid,
// setpriv to another user and a parent that died: the end-of-file and end-of-run checks find
// every survivor by it, whatever became of its ancestry. Nested runs (a test that runs vitest)
// append their tokens to the ones they inherited.
import { environOf, processTable, type ProcEntry } from './proc-table.ts';

export const RUN_MARKER = 'CAPGATE_TEST_RUN';

export const fileToken = (runId: string, testFile: string): string => `${runId}@${testFile}`;

/** The tokens in a marker value. */
export function tokensOf(value: string | undefined): string[] {
  return value === undefined || value === '' ? [] : value.split(',');
}

/** `value` (an inherited marker) with `tokens` added. */
export function withTokens(value: string | undefined, ...tokens: string[]): string {
  return [...new Set([...tokensOf(value), ...tokens])].join(',');
}

export interface MarkedProcess extends ProcEntry {
  tokens: string[];
}

/** Live processes whose marker holds a token `matches` accepts (never this process). */
export function markedProcesses(matches: (token: string) => boolean): MarkedProcess[] {
  const out: MarkedProcess[] = [];
  for (const p of processTable()) {
    if (p.pid === process.pid) continue;
    const tokens = tokensOf(environOf(p.pid)?.get(RUN_MARKER));
    if (tokens.some(matches)) out.push({ ...p, tokens });
  }
  return out;
}

/** One line per process, for failure messages. */
export function describeProcesses(list: readonly MarkedProcess[]): string {
  return list
    .map((p) => {
      const files = p.tokens.filter((t) => t.includes('@')).map((t) => t.slice(t.indexOf('@') + 1));
      return `  pid ${p.pid} (ppid ${p.ppid}, pgid ${p.pgid}) ${p.cmdline || '?'}${files.length > 0 ? `  [started by ${files.join(', ')}]` : ''}`;
    })
    .join('\n');
}
