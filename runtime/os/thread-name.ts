// Naming a thread: Linux keeps a name per thread (/proc/<pid>/task/<tid>/comm, 15 bytes), which
// top -H, ps -L and /proc show. Node 20 leaves every thread named "node"; a worker that names
// itself lets an operator (and the isolation bench) see which thread burns the CPU. Set with
// prctl(PR_SET_NAME), not by writing /proc/thread-self/comm: the daemon opens no file for it.
import { errnoName } from './errno.ts';
import { libc } from './libc.ts';

/** The longest thread name the kernel keeps (TASK_COMM_LEN 16, with the terminating NUL). */
const MAX_NAME_BYTES = 15;

/** Names the calling thread (a name longer than 15 bytes is refused, not cut). Throws when it cannot. */
export function nameThisThread(name: string): void {
  if (!/^[a-z0-9-]+$/.test(name) || name.length > MAX_NAME_BYTES)
    throw new RangeError(`a thread name is 1-${MAX_NAME_BYTES} of [a-z0-9-], got ${JSON.stringify(name)}`);
  const r = libc().setThreadName(name);
  if (!r.ok) throw new Error(`prctl(PR_SET_NAME, ${name}) failed: ${errnoName(r.errno)}`);
}
