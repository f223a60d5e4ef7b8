// Attack: another local user prepares the directories or the config file the root daemon will
// use, and the daemon takes them as found (its database, its sockets, its configuration).
// capgate trusts a path as sshd's StrictModes does: owned by root or the daemon's uid, writable
// by nobody else, not a symlink, and every parent likewise (a root-owned sticky parent such as
// /tmp excepted). Everything here runs the real `capgate serve` as root against real uid 65534.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CapgateAdminClient } from '../../runtime/client/index.ts';
import { Store } from '../../runtime/store/store.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import { REPO_ROOT, runCli } from '../cli/support/run-cli.ts';
import { asPolicy } from '../daemon/helpers/fixtures.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { NOBODY, runAsNobody, shAsNobody, stickyTmp } from './support/nobody.ts';
import { serve, type ServeOutcome } from './support/serve.ts';

afterAll(removeTempDirs);

/** A root-owned 0755 directory under the test's temp dir that uid 65534 can reach. */
function base(): string {
  const dir = tempDir('capgate-trust-');
  fs.chmodSync(dir, 0o755);
  return dir;
}

function refusal(o: ServeOutcome): string {
  if (o.kind === 'serving')
    throw new Error(`the daemon started (admin socket ${o.adminSocket}); it should have refused`);
  expect(o.code).not.toBe(0);
  return o.output;
}

/** A real capgate database with a VM anchored at pid 1 (every process on the host). */
function plantedDatabase(dir: string): string {
  const scratch = fs.mkdtempSync(path.join(dir, 'scratch-'));
  fs.chmodSync(scratch, 0o755);
  const file = path.join(scratch, 'capgate.db');
  const store = Store.open(file);
  store.vms.register({
    identity: { uuid: '5b0c8f4e-2d1a-4c3b-9e8f-7a6b5c4d3e2f', name: 'everything', id: 1, labels: [] },
    anchor: { rootPid: 1, rootStartTime: readStartTime(1)! },
  });
  store.close();
  for (const f of fs.readdirSync(scratch)) fs.chmodSync(path.join(scratch, f), 0o644);
  return file;
}

describe('directories prepared by another user', () => {
  it('refuses a state directory created by uid 65534 holding its own capgate.db, and never opens that database', async () => {
    const b = base();
    const tmp = stickyTmp(b);
    const planted = plantedDatabase(b);
    const state = path.join(tmp, 'capgate-state');
    await shAsNobody(`mkdir -m 0755 ${state} && cp ${planted} ${state}/capgate.db`);
    const before = fs.readFileSync(path.join(state, 'capgate.db'));

    const out = refusal(await serve(['--state-dir', state, '--run-dir', path.join(b, 'run')]));
    expect(out).toContain(state);
    expect(out).toMatch(/owned by uid 65534/);
    expect(out).toMatch(/root or the daemon's uid/);
    // Nothing of it was opened for writing: no WAL, no lock, the same bytes.
    expect(fs.readdirSync(state).sort()).toEqual(['capgate.db']);
    expect(fs.readFileSync(path.join(state, 'capgate.db')).equals(before)).toBe(true);
  });

  it('refuses a run directory created by uid 65534 (it could swap the sockets in it)', async () => {
    const b = base();
    const tmp = stickyTmp(b);
    const run = path.join(tmp, 'capgate-run');
    await shAsNobody(`mkdir -m 0755 ${run}`);
    const out = refusal(await serve(['--run-dir', run, '--state-dir', path.join(b, 'state')]));
    expect(out).toContain(run);
    expect(out).toMatch(/owned by uid 65534/);
    expect(fs.readdirSync(run)).toEqual([]);
  });

  it('refuses a root-owned directory that others may write to, sticky or not: the exception is for parents only', async () => {
    const b = base();
    for (const mode of [0o777, 0o1777, 0o775, 0o757]) {
      const run = fs.mkdtempSync(path.join(b, 'run-'));
      fs.chmodSync(run, mode);
      const out = refusal(await serve(['--run-dir', run, '--state-dir', path.join(b, 'state')]));
      expect(out).toContain(run);
      expect(out).toMatch(/writable by (group|others)/);
      expect(out).toMatch(/chmod go-w/);
    }
  });

  it('refuses a parent that others may write to, unless it is root-owned and sticky like /tmp', async () => {
    const b = base();
    const open = fs.mkdtempSync(path.join(b, 'open-'));
    fs.chmodSync(open, 0o777);
    const out = refusal(await serve(['--state-dir', path.join(open, 'state'), '--run-dir', path.join(b, 'run')]));
    expect(out).toContain(open);
    expect(out).toMatch(/parent/);
    expect(fs.readdirSync(open)).toEqual([]);

    // Owned by another user and sticky: still refused (its owner may rename what is in it).
    const theirs = path.join(stickyTmp(b), 'theirs');
    await shAsNobody(`mkdir -m 1777 ${theirs}`);
    const out2 = refusal(await serve(['--state-dir', path.join(theirs, 'state'), '--run-dir', path.join(b, 'run2')]));
    expect(out2).toContain(theirs);
    expect(out2).toMatch(/owned by uid 65534/);
  });

  it('refuses a run or state directory that is a symlink, even one pointing at a good directory', async () => {
    const b = base();
    const tmp = stickyTmp(b);
    const good = fs.mkdtempSync(path.join(b, 'good-'));
    const link = path.join(tmp, 'capgate-run');
    await shAsNobody(`ln -s ${good} ${link}`);
    const out = refusal(await serve(['--run-dir', link, '--state-dir', path.join(b, 'state')]));
    expect(out).toContain(link);
    expect(out).toMatch(/symlink/);

    const rootLink = path.join(b, 'state-link');
    fs.symlinkSync(good, rootLink);
    expect(refusal(await serve(['--state-dir', rootLink, '--run-dir', path.join(b, 'run')]))).toMatch(/symlink/);
  });

  it('creates missing directories itself (0700 state, 0755 run) under a root-owned sticky parent, where uid 65534 can neither swap a socket nor plant a file', async () => {
    const b = base();
    const tmp = stickyTmp(b);
    const run = path.join(tmp, 'run');
    const state = path.join(tmp, 'state');
    const up = await serve(['--run-dir', run, '--state-dir', state]);
    if (up.kind !== 'serving') throw new Error(`capgate serve exited ${up.code}:\n${up.output}`);
    try {
      expect(fs.lstatSync(run).mode & 0o7777).toBe(0o755);
      expect(fs.lstatSync(state).mode & 0o7777).toBe(0o700);
      expect(fs.lstatSync(run).uid).toBe(process.getuid!());
      const attempts = [
        `mv ${run}/admin.sock ${run}/old.sock`,
        `ln -s /nonexistent ${run}/admin2.sock`,
        `rm -f ${run}/request.sock`,
        `touch ${run}/planted`,
        `mv ${run} ${tmp}/moved`,
        `ls ${state}`,
      ];
      for (const a of attempts) expect((await runAsNobody(['sh', '-c', a])).code, a).not.toBe(0);
      const admin = new CapgateAdminClient({ socketPath: up.adminSocket });
      expect((await admin.health()).status).toBe('ok');
      admin.close();
    } finally {
      await up.served.stop();
    }
  });
});

describe('the config file', () => {
  const config = (dir: string): string => {
    const file = path.join(dir, 'config.yaml');
    fs.writeFileSync(file, `runDir: ${path.join(dir, 'run')}\nstateDir: ${path.join(dir, 'state')}\n`, { mode: 0o644 });
    return file;
  };

  it('is refused when another user owns it, may write it, or it is a symlink', async () => {
    const b = base();
    const theirs = config(fs.mkdtempSync(path.join(b, 'c1-')));
    fs.chownSync(theirs, NOBODY, NOBODY);
    let out = refusal(await serve(['--config', theirs]));
    expect(out).toContain(theirs);
    expect(out).toMatch(/owned by uid 65534/);

    const writable = config(fs.mkdtempSync(path.join(b, 'c2-')));
    fs.chmodSync(writable, 0o664);
    out = refusal(await serve(['--config', writable]));
    expect(out).toContain(writable);
    expect(out).toMatch(/writable by group/);

    const real = config(fs.mkdtempSync(path.join(b, 'c3-')));
    const link = path.join(path.dirname(real), 'link.yaml');
    fs.symlinkSync(real, link);
    out = refusal(await serve(['--config', link]));
    expect(out).toContain(link);
    expect(out).toMatch(/symlink/);

    // In a directory uid 65534 may write to: it could replace the file between two starts.
    const open = fs.mkdtempSync(path.join(b, 'c4-'));
    const inOpen = config(open);
    fs.chmodSync(open, 0o777);
    out = refusal(await serve(['--config', inOpen]));
    expect(out).toContain(open);
  });
});

describe('files of the state directory', () => {
  it('are 0600 (database, WAL, shared memory, audit journal, effects journal, lock) even under umask 022', async () => {
    const b = base();
    const state = path.join(b, 'state');
    const up = await serve(['--run-dir', path.join(b, 'run'), '--state-dir', state], { umask: 0o022 });
    if (up.kind !== 'serving') throw new Error(`capgate serve exited ${up.code}:\n${up.output}`);
    try {
      const admin = new CapgateAdminClient({ socketPath: up.adminSocket, timeoutMs: 120_000 });
      await admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'));
      await admin.bind('set-memlock', { policy: 'memlock-cap' });
      admin.close();
      const denied = await runCli([
        'request',
        'set-memlock',
        '--pid',
        String(process.pid),
        '--bytes',
        '4096',
        '--socket',
        up.requestSocket,
        '--json',
      ]);
      expect(denied.stdout).toContain('unknown-requester'); // an audited decision: the journal was written
      const files = fs.readdirSync(state).sort();
      expect(files).toEqual(
        expect.arrayContaining([
          'capgate.db',
          'capgate.db-audit-journal',
          'capgate.db-effects-journal',
          'capgate.db-shm',
          'capgate.db-wal',
          'capgate.db.lock',
        ]),
      );
      const modes = Object.fromEntries(
        files.map((f) => [f, (fs.statSync(path.join(state, f)).mode & 0o777).toString(8)]),
      );
      expect(modes).toEqual(Object.fromEntries(files.map((f) => [f, '600'])));
    } finally {
      await up.served.stop();
    }
  });
});

describe('examples', () => {
  it('never point the daemon at /tmp', async () => {
    const help = await runCli(['serve', '--help']);
    expect(help.stdout).not.toMatch(/\/tmp/);
    // git grep exits 1 when nothing matches.
    const docs = spawnSync(
      'git',
      ['grep', '-n', '-I', '-E', '(run-dir|state-dir|runDir|stateDir)[ =:]+/tmp', '--', '*.md', 'runtime', 'scripts'],
      { cwd: REPO_ROOT, encoding: 'utf8' },
    );
    expect(docs.stdout).toBe('');
    expect(docs.status).toBe(1);
  });
});
