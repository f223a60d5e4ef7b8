// A registered cgroup anchor in one canonical spelling, so that prefix checks mean what they say.

export const MAX_CGROUP_PATH_BYTES = 4096;

export type NormalizedCgroup = { ok: true; path: string } | { ok: false; error: string };

/**
 * Absolute, no `..`, no control characters; `.` segments, repeated and trailing slashes removed.
 * The root `/` is refused: every process on the host is at or below it.
 */
export function normalizeCgroupPath(input: unknown): NormalizedCgroup {
  if (typeof input !== 'string')
    return { ok: false, error: 'anchor.cgroup must be a string such as "/kubepods/pod123"' };
  if (!input.startsWith('/'))
    return {
      ok: false,
      error: `anchor.cgroup must be an absolute cgroup v2 path (as in /proc/<pid>/cgroup), got "${input}"`,
    };
  if (Buffer.byteLength(input) > MAX_CGROUP_PATH_BYTES)
    return { ok: false, error: `anchor.cgroup is longer than ${MAX_CGROUP_PATH_BYTES} bytes` };
  if (/[\u0000-\u001f\u007f]/.test(input)) return { ok: false, error: 'anchor.cgroup contains control characters' };
  const segments = input.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..'))
    return { ok: false, error: `anchor.cgroup must not contain ".." segments, got "${input}"` };
  if (segments.length === 0)
    return {
      ok: false,
      error:
        'anchor.cgroup "/" is the root cgroup, which contains every process on the host; register the VM\'s own cgroup',
    };
  return { ok: true, path: `/${segments.join('/')}` };
}
