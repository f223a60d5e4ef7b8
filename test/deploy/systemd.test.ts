// deploy/systemd/capgate.service: systemd accepts it, its hardening score is the README's, it
// agrees with the daemon's defaults and path checks, and the daemon reports readiness the way
// the unit's Type=notify expects (READY=1 from the main pid, once both sockets answer).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CapgateAdminClient, CapgateRequestClient } from '../../runtime/client/index.ts';
import { loadConfigFile, resolveConfig } from '../../runtime/daemon/config.ts';
import { RUN_DIR_MODE, STATE_DIR_MODE } from '../../runtime/daemon/directories.ts';
import { REPO_ROOT } from '../cli/support/run-cli.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { serve } from '../security/support/serve.ts';
import { NotifyListener } from './support/notify-listener.ts';
import { readUnit, value, values } from './support/unit-file.ts';

const UNIT_FILE = path.join(REPO_ROOT, 'deploy', 'systemd', 'capgate.service');
const unit = readUnit(UNIT_FILE);
const service = (key: string): string => value(unit, 'Service', key);

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;
if (!hasSystemdAnalyze)
  console.log(
    'systemd-analyze is not installed (Debian: apt-get install systemd): the unit is not verified or scored here',
  );

const listeners: NotifyListener[] = [];
afterEach(() => {
  for (const l of listeners.splice(0)) l.close();
});
afterAll(removeTempDirs);

describe.skipIf(!hasSystemdAnalyze)('systemd-analyze', () => {
  it('verify accepts the unit without a single warning (only ExecStart pointed at an executable that exists here)', () => {
    // verify checks that ExecStart's binary exists; /usr/local/bin/capgate is where the install puts it.
    const text = fs.readFileSync(UNIT_FILE, 'utf8');
    const installed = '/usr/local/bin/capgate';
    expect(text).toContain(`ExecStart=${installed} serve`);
    const copy = path.join(tempDir('capgate-unit-'), 'capgate.service');
    fs.writeFileSync(
      copy,
      text.replace(`ExecStart=${installed}`, `ExecStart=${path.join(REPO_ROOT, 'runtime/cli/capgate.mjs')}`),
    );
    const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('scores the exposure the README states', () => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', UNIT_FILE], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const m = /Overall exposure level for capgate\.service: (\d+\.\d+) (\S+)/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const version = /systemd (\d+)/.exec(spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).stdout)?.[1];
    console.log(`systemd-analyze security (systemd ${version}): ${m![1]} ${m![2]}`);
    for (const doc of ['README.md', 'docs/systemd.md'])
      expect(fs.readFileSync(path.join(REPO_ROOT, doc), 'utf8'), doc).toContain(
        `**${m![1]} ${m![2]}** (systemd ${version}`,
      );
  });
});

describe('the unit and the daemon agree', () => {
  it("creates the daemon's root defaults with modes its path checks accept, and runs the installed bin with the shipped config", () => {
    const defaults = resolveConfig({}, { uid: 0, cwd: '/', cores: 2 });
    expect(`/run/${service('RuntimeDirectory')}`).toBe(defaults.runDir);
    expect(`/var/lib/${service('StateDirectory')}`).toBe(defaults.stateDir);
    // The modes the daemon itself would create them with: not writable by group or others (path
    // trust), the run directory searchable by everyone (clients reach request.sock in it).
    expect(Number.parseInt(service('RuntimeDirectoryMode'), 8)).toBe(RUN_DIR_MODE);
    expect(Number.parseInt(service('StateDirectoryMode'), 8)).toBe(STATE_DIR_MODE);
    expect(RUN_DIR_MODE & 0o022).toBe(0);
    expect(RUN_DIR_MODE & 0o001).toBe(0o001);
    expect(service('UMask')).toBe('0077');

    expect(service('ExecStart')).toBe('/usr/local/bin/capgate serve --config /etc/capgate/config.yaml');
    // The config the install copies to /etc/capgate/config.yaml loads, and keeps the unit's directories.
    const dir = tempDir('capgate-unit-config-');
    fs.copyFileSync(path.join(REPO_ROOT, 'deploy', 'config.yaml'), path.join(dir, 'config.yaml'));
    const config = resolveConfig(loadConfigFile(path.join(dir, 'config.yaml')), { uid: 0, cwd: '/', cores: 2 });
    expect([
      config.runDir,
      config.stateDir,
      path.dirname(config.requestSocket),
      path.dirname(config.adminSocket),
    ]).toEqual([defaults.runDir, defaults.stateDir, defaults.runDir, defaults.runDir]);
  });

  it('asks for readiness from the main pid and hardens the service as the README says', () => {
    expect([service('Type'), service('NotifyAccess')]).toEqual(['notify', 'main']);
    for (const [key, want] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['PrivateDevices', 'yes'],
      ['PrivateNetwork', 'yes'],
      ['RestrictAddressFamilies', 'AF_UNIX'],
      ['ProtectKernelTunables', 'yes'],
      ['ProtectControlGroups', 'yes'],
      ['RestrictNamespaces', 'yes'],
      ['SystemCallArchitectures', 'native'],
    ] as const) {
      expect(service(key), key).toBe(want);
    }
    expect(service('CapabilityBoundingSet').split(/\s+/).sort()).toEqual(['CAP_KILL', 'CAP_SYS_RESOURCE']);
    expect(values(unit, 'Service', 'SystemCallFilter')[0]).toBe('@system-service @pkey');
    // What would break the daemon: hidden processes, a user namespace, no JIT.
    for (const key of ['ProtectProc', 'PrivateUsers', 'MemoryDenyWriteExecute', 'ProcSubset', 'User', 'DynamicUser'])
      expect(values(unit, 'Service', key), key).toEqual([]);
  });
});

describe('readiness over $NOTIFY_SOCKET (Type=notify)', () => {
  for (const kind of ['path', 'abstract'] as const) {
    it(`sends READY=1 from the main pid once both sockets answer, and STOPPING=1 on SIGTERM (${kind} socket)`, async () => {
      const dir = tempDir('capgate-notify-');
      const address =
        kind === 'path' ? path.join(dir, 'notify') : `@capgate-test-notify-${process.pid}-${path.basename(dir)}`;
      const listener = new NotifyListener(address);
      listeners.push(listener);
      const first = listener.next();
      const runDir = path.join(dir, 'run');
      const served = serve(['--run-dir', runDir, '--state-dir', path.join(dir, 'state')], {
        env: { NOTIFY_SOCKET: address },
      });

      const ready = await first;
      // At READY=1 both sockets answer already: nothing ordered after capgate finds it missing.
      const requests = new CapgateRequestClient({ socketPath: path.join(runDir, 'request.sock'), timeoutMs: 30_000 });
      const admin = new CapgateAdminClient({ socketPath: path.join(runDir, 'admin.sock'), timeoutMs: 30_000 });
      try {
        expect((await requests.health()).status).toBe('ok');
        expect((await admin.health()).status).toBe('ok');
      } finally {
        requests.close();
        admin.close();
      }
      const up = await served;
      if (up.kind !== 'serving') throw new Error(`capgate serve exited ${up.code}:\n${up.output}`);
      expect(ready.pid).toBe(up.served.child.pid);
      expect(ready.state.split('\n')).toEqual([
        'READY=1',
        `STATUS=serving: admin ${up.adminSocket}, requests ${up.requestSocket}`,
      ]);

      const stopping = listener.next();
      up.served.child.kill('SIGTERM');
      expect(await stopping).toEqual({ state: 'STOPPING=1', pid: up.served.child.pid });
      expect(await up.served.exited).toBe(0);
    });
  }

  it('serves on, and says why in its log, when $NOTIFY_SOCKET cannot be reached', async () => {
    const dir = tempDir('capgate-notify-');
    const missing = path.join(dir, 'no-such-socket');
    const up = await serve(['--run-dir', path.join(dir, 'run'), '--state-dir', path.join(dir, 'state')], {
      env: { NOTIFY_SOCKET: missing },
    });
    if (up.kind !== 'serving') throw new Error(`capgate serve exited ${up.code}:\n${up.output}`);
    const requests = new CapgateRequestClient({ socketPath: up.requestSocket, timeoutMs: 30_000 });
    try {
      expect((await requests.health()).status).toBe('ok');
    } finally {
      requests.close();
    }
    // The log is complete once the daemon has exited (pino flushes at exit).
    expect(await up.served.stop()).toBe(0);
    expect(up.served.output()).toContain('could not tell the service manager \\"READY=1\\"');
    expect(up.served.output()).toContain(`NOTIFY_SOCKET=${missing}`);
    expect(up.served.output()).toContain('ENOENT');
  });

  it('is silent without $NOTIFY_SOCKET (not started by systemd)', async () => {
    const dir = tempDir('capgate-notify-');
    // An empty value is unset, as sd_notify(3) treats it.
    const up = await serve(
      ['--run-dir', path.join(dir, 'run'), '--state-dir', path.join(dir, 'state'), '--log-level', 'debug'],
      { env: { NOTIFY_SOCKET: '' } },
    );
    if (up.kind !== 'serving') throw new Error(`capgate serve exited ${up.code}:\n${up.output}`);
    expect(await up.served.stop()).toBe(0);
    expect(up.served.output()).toContain('capgate ready');
    expect(up.served.output()).not.toContain('service manager');
  });
});
