// A snapshot of the host's processes from /proc, read independently of the code under test:
// who is whose parent, which process group each is in, its command line, and the test-run
// marker it inherited (see run-marker.ts).
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcEntry {
  pid: number;
  ppid: number;
  pgid: number;
  /** argv joined by spaces; empty for kernel threads and zombies. */
  cmdline: string;
}

function readOrNull(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null; // gone, or not ours to read
  }
}

/** pid, ppid and pgid of one process, from /proc/<pid>/stat (fields after comm, which may hold anything). */
export function readProc(pid: number): ProcEntry | null {
  const stat = readOrNull(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Zombies have already released everything but their exit status: nothing left to kill.
  if (fields[0] === 'Z' || fields[0] === 'X') return null;
  const cmdline = (readOrNull(`/proc/${pid}/cmdline`) ?? '').replace(/\0+$/, '').replace(/\0/g, ' ');
  return { pid, ppid: Number(fields[1]), pgid: Number(fields[2]), cmdline };
}

/** Every live (non-zombie) process. */
export function processTable(): ProcEntry[] {
  const out: ProcEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const entry = readProc(Number(name));
    if (entry !== null) out.push(entry);
  }
  return out;
}

/** The environment a process was started with (what it inherited), or null if unreadable. */
export function environOf(pid: number): Map<string, string> | null {
  const text = readOrNull(`/proc/${pid}/environ`);
  if (text === null) return null;
  const env = new Map<string, string>();
  for (const entry of text.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}

/** `roots` and every process below them (by parent pid), in `table`. */
export function descendantsOf(roots: Iterable<number>, table: readonly ProcEntry[]): Set<number> {
  const children = new Map<number, number[]>();
  for (const p of table) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const out = new Set<number>();
  const stack = [...roots];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (out.has(pid)) continue;
    out.add(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** The processes below `pid` whose command line names `script` (e.g. the daemon's compile-main, launcher-main). */
export function descendantsRunning(pid: number, script: string): number[] {
  const table = processTable();
  const tree = descendantsOf([pid], table);
  return table.filter((p) => p.pid !== pid && tree.has(p.pid) && p.cmdline.includes(script)).map((p) => p.pid);
}
