// The calling thread's kernel id (a tid; the main thread's is the pid): per-thread settings
// (nice value, capabilities) are read and set by it. /proc/thread-self links to
// /proc/<pid>/task/<tid>; Node has no gettid().
import { readlinkSync } from 'node:fs';

export function currentThreadId(): number {
  return Number(readlinkSync('/proc/thread-self').split('/').pop());
}
