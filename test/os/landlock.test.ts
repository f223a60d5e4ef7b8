// The Landlock binding (runtime/os/landlock.ts): the rights each ABI adds, as the kernel's uapi
// header numbers them, and a real process that enters a domain through it: it reads beneath its
// rules and nothing else, writes nowhere (every right the ABI knows is handled, only reading is
// given back), and a rule on a path that does not exist is left out rather than failing.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsRights, KNOWN_LANDLOCK_ABI, landlockSupport, netRights, scopes } from '../../runtime/os/landlock.ts';
import { REPO_ROOT } from '../cli/support/run-cli.ts';
import { runChild } from '../support/processes/children.ts';

const BOOTSTRAP = join(REPO_ROOT, 'runtime/bootstrap/register.mjs');
const PROBE = fileURLToPath(new URL('./fixtures/landlock-probe.ts', import.meta.url));
const support = landlockSupport();
if (!support.ok) console.log(`Landlock is not available here, its process test is skipped: ${support.why}`);

describe('Landlock rights by ABI', () => {
  it('adds REFER at 2, TRUNCATE at 3, TCP at 4, IOCTL_DEV at 5, the scopes at 6', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((abi) => fsRights(abi).toString(16))).toEqual([
      '1fff',
      '3fff',
      '7fff',
      '7fff',
      'ffff',
      'ffff',
      'ffff',
      'ffff',
    ]);
    expect([3, 4, 8].map(netRights)).toEqual([0n, 3n, 3n]);
    expect([5, 6, 8].map(scopes)).toEqual([0n, 3n, 3n]);
    expect(KNOWN_LANDLOCK_ABI).toBe(8);
  });
});

describe.skipIf(!support.ok)('a process in a domain made by restrictSelf', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'capgate-landlock-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads beneath its rules only, writes nowhere, and skips a missing path', async () => {
    mkdirSync(join(dir, 'allowed'));
    mkdirSync(join(dir, 'other'));
    const inside = join(dir, 'allowed', 'a.txt');
    const single = join(dir, 'other', 'single.txt');
    const outside = join(dir, 'other', 'secret.txt');
    for (const f of [inside, single, outside]) writeFileSync(f, 'x', { mode: 0o600 });
    const r = await runChild(process.execPath, [
      '--import',
      BOOTSTRAP,
      PROBE,
      join(dir, 'allowed'),
      single,
      join(dir, 'missing'),
      inside,
      single,
      outside,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const abi = support.ok ? Math.min(support.abi, KNOWN_LANDLOCK_ABI) : 0;
    expect(JSON.parse(r.stdout)).toEqual({
      restriction: { abi, threads: 'calling' },
      results: {
        [`read ${inside}`]: 'ok',
        [`write ${inside}`]: 'EACCES',
        [`read ${single}`]: 'ok',
        [`write ${single}`]: 'EACCES',
        [`read ${outside}`]: 'EACCES',
        [`write ${outside}`]: 'EACCES',
      },
    });
  }, 60_000);
});
