// Admin-side VM registration: every field validated, the root pid's start time pinned from /proc.
import { describe, expect, it } from 'vitest';
import { validateVmRegistration } from '../../runtime/identity/registration.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import { deadPid, spawnShell } from './support/processes.ts';

const UUID = '3F2B8C1E-9D4A-4B6E-8F10-2A7C5E9D0B13';
const base = (anchor: unknown, identity: Record<string, unknown> = {}) => ({
  identity: { uuid: UUID, name: 'vm-a', id: 7, labels: [['vfio', 'true']], ...identity },
  anchor,
});

function errorOf(input: unknown): string {
  const r = validateVmRegistration(input);
  if (r.ok) throw new Error(`expected a validation error for ${JSON.stringify(input)}`);
  return r.error;
}

describe('validateVmRegistration', () => {
  it('accepts a root-pid anchor and stores the start time the kernel reports now', () => {
    const root = spawnShell('sleep 300');
    const r = validateVmRegistration(base({ rootPid: root.pid }));
    expect(r).toEqual({
      ok: true,
      vm: {
        identity: { uuid: UUID.toLowerCase(), name: 'vm-a', id: 7, labels: [['vfio', 'true']] },
        anchor: { rootPid: root.pid, rootStartTime: readStartTime(root.pid) },
      },
    });
  });

  it('accepts a cgroup anchor (normalised), both anchors, and labels as an object', () => {
    const r = validateVmRegistration(
      base({ cgroup: '/kubepods//pod1/' }, { labels: { a: '1', 'capgate.io/memlock-max': '4096' } }),
    );
    expect(r.ok && r.vm).toEqual({
      identity: {
        uuid: UUID.toLowerCase(),
        name: 'vm-a',
        id: 7,
        labels: [
          ['a', '1'],
          ['capgate.io/memlock-max', '4096'],
        ],
      },
      anchor: { cgroup: '/kubepods/pod1' },
    });
    const root = spawnShell('sleep 300');
    const both = validateVmRegistration(base({ rootPid: root.pid, cgroup: '/x' }));
    expect(both.ok && both.vm.anchor).toEqual({
      rootPid: root.pid,
      rootStartTime: readStartTime(root.pid),
      cgroup: '/x',
    });
  });

  it('refuses a root pid that is not running, or whose pinned start time no longer matches', async () => {
    expect(errorOf(base({ rootPid: await deadPid() }))).toMatch(/not a running process/);
    const root = spawnShell('sleep 300');
    const startTime = readStartTime(root.pid)!;
    expect(validateVmRegistration(base({ rootPid: root.pid, rootStartTime: startTime })).ok).toBe(true);
    expect(errorOf(base({ rootPid: root.pid, rootStartTime: startTime + 1 }))).toMatch(/process was replaced/);
    expect(errorOf(base({ rootStartTime: 5, cgroup: '/x' }))).toMatch(/only meaningful together with anchor.rootPid/);
  });

  it('says what is wrong with each bad field', () => {
    const cases: Array<[unknown, RegExp]> = [
      [null, /must be an object/],
      [base({}), /at least one of rootPid or cgroup/],
      [base(undefined), /anchor must be an object/],
      [base({ rootpid: 1 }), /unknown field\(s\) "rootpid"/],
      [{ ...base({ cgroup: '/x' }), extra: 1 }, /unknown field\(s\) "extra"/],
      [base({ rootPid: 0 }), /rootPid must be a pid/],
      [base({ rootPid: -5 }), /rootPid must be a pid/],
      [base({ rootPid: 99_999_999 }), /rootPid must be a pid/],
      [base({ cgroup: '/a/../b' }), /\.\./],
      [base({ cgroup: '/' }), /root cgroup/],
      [base({ cgroup: 'relative' }), /absolute/],
      [base({ cgroup: '/x' }, { uuid: 'not-a-uuid' }), /RFC 4122/],
      [base({ cgroup: '/x' }, { uuid: '00000000-0000-0000-0000-000000000000' }), /RFC 4122/],
      [base({ cgroup: '/x' }, { uuid: '3f2b8c1e-9d4a-4b6e-cf10-2a7c5e9d0b13' }), /RFC 4122/], // bad variant
      [base({ cgroup: '/x' }, { uuid: '3f2b8c1e9d4a4b6e8f102a7c5e9d0b13' }), /RFC 4122/],
      [base({ cgroup: '/x' }, { name: '' }), /1\.\.253 characters/],
      [base({ cgroup: '/x' }, { name: 'a'.repeat(254) }), /1\.\.253 characters/],
      [base({ cgroup: '/x' }, { name: 'bad\u0007name' }), /printable/],
      [base({ cgroup: '/x' }, { id: 2 ** 31 }), /signed 32-bit/],
      [base({ cgroup: '/x' }, { id: 1.5 }), /signed 32-bit/],
      [base({ cgroup: '/x' }, { id: '7' }), /signed 32-bit/],
      [base({ cgroup: '/x' }, { labels: Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']) }), /at most 64/],
      [
        base(
          { cgroup: '/x' },
          {
            labels: [
              ['k', 'v'],
              ['k', 'w'],
            ],
          },
        ),
        /appears more than once/,
      ],
      [base({ cgroup: '/x' }, { labels: [['', 'v']] }), /1\.\.253 bytes/],
      [base({ cgroup: '/x' }, { labels: [['k'.repeat(254), 'v']] }), /1\.\.253 bytes/],
      [base({ cgroup: '/x' }, { labels: [['k', 'v'.repeat(1025)]] }), /longer than 1024 bytes/],
      [base({ cgroup: '/x' }, { labels: [['k', 'a\nb']] }), /control characters/],
      [base({ cgroup: '/x' }, { labels: [['k', 1]] }), /string value/],
      [base({ cgroup: '/x' }, { labels: [['k']] }), /\[key, value\] pair/],
      [base({ cgroup: '/x' }, { labels: 'vfio=true' }), /list of \[key, value\] pairs/],
    ];
    for (const [input, message] of cases) expect(errorOf(input), JSON.stringify(input).slice(0, 120)).toMatch(message);
  });

  it('accepts the boundaries', () => {
    const r = validateVmRegistration(
      base(
        { cgroup: '/x' },
        {
          name: 'é'.repeat(253),
          id: -(2 ** 31),
          labels: Array.from({ length: 64 }, (_, i) => [`${i}`.padEnd(253, 'k'), 'v'.repeat(1024)]),
        },
      ),
    );
    expect(r.ok).toBe(true);
  });
});
