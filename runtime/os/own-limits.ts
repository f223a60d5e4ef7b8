// Lowering this process's own resource limits: no privilege needed, and none can raise them back.
import { errnoName } from './errno.ts';
import { libc } from './libc.ts';

/** Sets soft and hard limit of `resource` to `value`, or to the hard limit if that is lower. Throws if refused. */
export function lowerOwnLimit(resource: number, value: bigint): bigint {
  const c = libc();
  const now = c.prlimit(0, resource, null);
  if (!now.ok) throw new Error(`prlimit(resource ${resource}) failed with ${errnoName(now.errno)}`);
  const next = now.old.hard < value ? now.old.hard : value;
  const r = c.prlimit(0, resource, { soft: next, hard: next });
  if (!r.ok) throw new Error(`prlimit(resource ${resource}, ${next}) failed with ${errnoName(r.errno)}`);
  return next;
}
