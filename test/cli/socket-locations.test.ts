// Client defaults: `capgate serve` and the client commands resolve the sockets the same way, so a
// client finds the daemon whatever uid each runs as: the resolution itself, then real daemons
// (root, and uid 65534 in its own directory) reached by clients running as uid 65534 (setpriv).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../runtime/daemon/config.ts';
import { socketCandidates } from '../../runtime/daemon/socket-locations.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { NOBODY, runAsNobody } from '../security/support/nobody.ts';
import { serve } from '../security/support/serve.ts';
import { runChild } from '../support/processes/children.ts';
import { CAPGATE_BIN, runProcess } from './support/run-cli.ts';

const SETPRIV = ['setpriv', '--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups'] as const;

const impostors: http.Server[] = [];

afterAll(async () => {
  await Promise.all(impostors.map((s) => new Promise((r) => s.close(r))));
  removeTempDirs();
});

const paths = (kind: 'admin' | 'request', env: Parameters<typeof socketCandidates>[1], flag?: string): string[] =>
  socketCandidates(kind, env, flag).map((c) => c.path);

describe('the resolution', () => {
  it('a non-root caller looks in its own ./.capgate/run, then where a root daemon listens; root only in /run/capgate', () => {
    expect(paths('request', { uid: NOBODY, cwd: '/home/x' })).toEqual([
      '/home/x/.capgate/run/request.sock',
      '/run/capgate/request.sock',
    ]);
    expect(paths('admin', { uid: 107, cwd: '/var/lib/libvirt' })).toEqual([
      '/var/lib/libvirt/.capgate/run/admin.sock',
      '/run/capgate/admin.sock',
    ]);
    expect(paths('request', { uid: 0, cwd: '/home/x' })).toEqual(['/run/capgate/request.sock']);
  });

  it('--socket, then CAPGATE_<KIND>_SOCKET, then CAPGATE_RUN_DIR; relative paths from the working directory; empty variables ignored', () => {
    const vars = { CAPGATE_RUN_DIR: 'rd', CAPGATE_REQUEST_SOCKET: '/s/req.sock', CAPGATE_ADMIN_SOCKET: '' };
    expect(paths('request', { uid: NOBODY, cwd: '/w', vars }, 'my.sock')).toEqual(['/w/my.sock']);
    expect(paths('request', { uid: NOBODY, cwd: '/w', vars })).toEqual(['/s/req.sock']);
    expect(paths('admin', { uid: NOBODY, cwd: '/w', vars })).toEqual(['/w/rd/admin.sock']);
    expect(socketCandidates('admin', { uid: 0, cwd: '/w', vars }).map((c) => c.from)).toEqual(['CAPGATE_RUN_DIR']);
  });

  it('the daemon reads the same variables, below its flags and config file', () => {
    const vars = { CAPGATE_RUN_DIR: '/v/run', CAPGATE_ADMIN_SOCKET: '/v/a.sock' };
    const fromVars = resolveConfig({}, { uid: 0, cwd: '/w', cores: 2, vars });
    expect([fromVars.runDir, fromVars.adminSocket, fromVars.requestSocket]).toEqual([
      '/v/run',
      '/v/a.sock',
      '/v/run/request.sock',
    ]);
    const fromFile = resolveConfig(
      { runDir: '/f/run', adminSocket: 'adm.sock' },
      { uid: 0, cwd: '/w', cores: 2, vars },
    );
    expect([fromFile.runDir, fromFile.adminSocket, fromFile.requestSocket]).toEqual([
      '/f/run',
      '/f/run/adm.sock',
      '/f/run/request.sock',
    ]);
    const none = resolveConfig({}, { uid: NOBODY, cwd: '/w', cores: 2 });
    expect([none.runDir, none.requestSocket]).toEqual(['/w/.capgate/run', '/w/.capgate/run/request.sock']);
  });
});

/** A directory uid 65534 may work in (its own, under a root-owned traversable parent). */
function nobodysDir(): string {
  const parent = tempDir('capgate-locations-');
  fs.chmodSync(parent, 0o755);
  const dir = path.join(parent, 'home');
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.chownSync(dir, NOBODY, NOBODY);
  return dir;
}

const asNobody = (args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) =>
  runAsNobody([process.execPath, CAPGATE_BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH, NO_COLOR: '1', ...env },
  });

describe('real daemons, clients as uid 65534', () => {
  it('a root daemon whose run directory comes from CAPGATE_RUN_DIR is found by a uid 65534 client given the same variable, and by root', async () => {
    const dir = tempDir('capgate-rundir-');
    fs.chmodSync(dir, 0o755);
    const runDir = path.join(dir, 'run');
    const up = await serve(['--state-dir', path.join(dir, 'state')], { env: { CAPGATE_RUN_DIR: runDir } });
    if (up.kind !== 'serving') throw new Error(`capgate serve exited ${up.code}:\n${up.output}`);
    expect(up.requestSocket).toBe(path.join(runDir, 'request.sock'));

    const health = await asNobody(['health', '--json'], '/', { CAPGATE_RUN_DIR: runDir });
    expect(health.code, health.stderr).toBe(0);
    expect(JSON.parse(health.stdout)).toMatchObject({ status: 'ok' });
    // A real request, with the kernel's view of the caller (uid 65534, in no VM): denied.
    const request = await runAsNobody(
      ['sh', '-c', `exec "${process.execPath}" "${CAPGATE_BIN}" request set-memlock --pid $$ --bytes 1Mi --json`],
      { cwd: '/', env: { PATH: process.env.PATH, CAPGATE_RUN_DIR: runDir } },
    );
    expect(request.code, request.stderr).toBe(1);
    expect(JSON.parse(request.stdout)).toMatchObject({ decision: 'deny' });
    // The admin socket is there too, and only root may use it.
    const adminAsNobody = await asNobody(['policy', 'ls'], '/', { CAPGATE_RUN_DIR: runDir });
    expect(adminAsNobody.code).toBe(3);
    expect(adminAsNobody.stderr).toContain(`permission denied on ${path.join(runDir, 'admin.sock')}`);
    const adminAsRoot = await runChild(process.execPath, [CAPGATE_BIN, 'policy', 'ls', '--json'], {
      cwd: '/',
      env: { ...process.env, CAPGATE_RUN_DIR: runDir },
    });
    expect(adminAsRoot.code, adminAsRoot.stderr).toBe(0);
    expect(JSON.parse(adminAsRoot.stdout)).toEqual({ policies: [] });
    expect(await up.served.stop()).toBe(0);
  });

  it('a daemon uid 65534 started in its directory is found there by its client with nothing set', async () => {
    const home = nobodysDir();
    const up = await serve([], {
      command: [...SETPRIV, process.execPath, CAPGATE_BIN],
      cwd: home,
      env: { CAPGATE_RUN_DIR: '' },
    });
    if (up.kind !== 'serving') throw new Error(`capgate serve as uid ${NOBODY} exited ${up.code}:\n${up.output}`);
    expect(up.adminSocket).toBe(path.join(home, '.capgate', 'run', 'admin.sock'));
    const health = await asNobody(['health'], home);
    expect(health.code, health.stderr).toBe(0);
    expect(health.stdout).toMatch(/^ok: capgate \d+\.\d+\.\d+, up \d+ s$/m);
    const ls = await asNobody(['policy', 'ls', '--json'], home);
    expect(ls.code, ls.stderr).toBe(0);
    expect(await up.served.stop()).toBe(0);
  });

  it('with no daemon, the error lists every path tried, why, what was there, and what to do; exit 3', async () => {
    const home = nobodysDir();
    if (fs.existsSync('/run/capgate/request.sock')) {
      console.log(
        '/run/capgate/request.sock exists on this machine: the no-daemon listing is checked with CAPGATE_RUN_DIR only',
      );
    } else {
      const r = await asNobody(['health'], home);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(
        `${home}/.capgate/run/request.sock (where \`capgate serve\` run by you in this directory listens): no such file`,
      );
      expect(r.stderr).toContain('/run/capgate/request.sock (where a root daemon listens): no such file');
      expect(r.stderr).toMatch(
        /hint: start the daemon with `capgate serve` .*--socket <path>, CAPGATE_REQUEST_SOCKET=<path> or CAPGATE_RUN_DIR=<dir>/,
      );
      const j = await asNobody(['request', 'set-memlock', '--pid', '1', '--bytes', '1Mi', '--json'], home);
      expect(j.code).toBe(3);
      expect(JSON.parse(j.stdout)).toMatchObject({
        exitCode: 3,
        error: {
          kind: 'daemon-unreachable',
          tried: [
            { path: `${home}/.capgate/run/request.sock`, problem: 'no such file' },
            { path: '/run/capgate/request.sock', problem: 'no such file' },
          ],
        },
      });
    }
    // A file where the socket should be, named by a variable: said so.
    fs.writeFileSync(path.join(home, 'request.sock'), '');
    const notSocket = await asNobody(['health', '--json'], '/', { CAPGATE_RUN_DIR: home });
    expect(notSocket.code).toBe(3);
    expect(JSON.parse(notSocket.stdout)).toMatchObject({
      error: {
        tried: [{ path: path.join(home, 'request.sock'), from: 'from $CAPGATE_RUN_DIR', problem: 'not a socket' }],
      },
    });
  });
});

describe('a socket planted where a client looks by default', () => {
  /** A server that answers everything as a healthy capgate would, and counts what it was asked. */
  async function impostor(socketPath: string): Promise<{ asked: () => number }> {
    let asked = 0;
    const server = http.createServer((_req, res) => {
      asked++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          status: 'ok',
          version: '6.6.6',
          uptimeS: 1,
          decision: 'allow',
          reason: '',
          decisionId: 'forged',
        }),
      );
    });
    impostors.push(server);
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    fs.chmodSync(socketPath, 0o777);
    return { asked: () => asked };
  }

  it.each([
    ['owned by another user', 4242, 0o755, /belongs to uid 4242, not to you or root/],
    ['writable by others', NOBODY, 0o777, /others may write to .* \(mode 777\)/],
  ] as const)(
    'is not used when its directory is %s: the client reports it and asks nobody',
    async (_what, owner, mode, problem) => {
      const home = nobodysDir();
      const run = path.join(home, '.capgate', 'run');
      fs.mkdirSync(run, { recursive: true });
      fs.chownSync(path.join(home, '.capgate'), NOBODY, NOBODY);
      const fake = await impostor(path.join(run, 'request.sock'));
      fs.chownSync(run, owner, owner);
      fs.chmodSync(run, mode);
      // Not spawnSync: the impostor answers from this process's event loop.
      const nobody = (env: NodeJS.ProcessEnv) =>
        runProcess('setpriv', [...SETPRIV.slice(1), process.execPath, CAPGATE_BIN, 'health', '--json'], {
          cwd: home,
          env: { PATH: process.env.PATH, ...env },
        });
      const r = await nobody({});
      expect(r.code).toBe(3);
      expect(JSON.parse(r.stdout)).toMatchObject({
        error: {
          kind: 'daemon-unreachable',
          tried: [
            { path: path.join(run, 'request.sock'), problem: expect.stringMatching(problem) },
            { path: '/run/capgate/request.sock' },
          ],
        },
      });
      expect(fake.asked()).toBe(0);
      // Named on purpose, the same socket is the caller's choice (and answers).
      const named = await nobody({ CAPGATE_RUN_DIR: run });
      expect(named.code, named.stderr).toBe(0);
      expect(fake.asked()).toBe(1);
    },
  );
});

const canMount = spawnSync('unshare', ['-m', 'true']).status === 0;
if (!canMount)
  console.log(
    'unshare -m is not permitted here (no CAP_SYS_ADMIN): a root daemon on the real default /run/capgate is not tried',
  );

describe.skipIf(!canMount)('a root daemon on its built-in default, /run/capgate', () => {
  it('is found by a uid 65534 client with nothing set (a private /run in a mount namespace of its own)', async () => {
    const state = tempDir('capgate-default-');
    // The daemon runs in the background of this script, which stops it; the script is pid 1 of a
    // pid namespace, so whatever is left dies with it (--kill-child: and it with unshare), and
    // the tmpfs /run goes away with the mount namespace. The wait is a bounded poll for the socket
    // that ends early if the daemon exits. The namespace gets its own /proc (--mount-proc): the
    // daemon refuses a /proc of another pid namespace, since every pid it reads would be wrong.
    const script = [
      'mount --make-rprivate / && mount -t tmpfs -o mode=0755 capgate-test-run /run || exit 90',
      '"$NODE" "$BIN" serve --state-dir "$STATE" --log-level warn >"$STATE/serve.log" 2>&1 &',
      'daemon=$!',
      "trap 'kill $daemon 2>/dev/null; wait $daemon' EXIT",
      'i=0; while [ ! -S /run/capgate/request.sock ] && kill -0 $daemon 2>/dev/null && [ $i -lt 600 ]; do i=$((i+1)); sleep 0.1; done',
      'cd / && setpriv --reuid 65534 --regid 65534 --clear-groups "$NODE" "$BIN" health; echo "health-exit=$?"',
    ].join('\n');
    const r = await runChild(
      'unshare',
      ['--mount', '--pid', '--fork', '--kill-child', '--mount-proc', 'sh', '-c', script],
      { env: { PATH: process.env.PATH, NODE: process.execPath, BIN: CAPGATE_BIN, STATE: state, NO_COLOR: '1' } },
    );
    const log = fs.existsSync(path.join(state, 'serve.log'))
      ? fs.readFileSync(path.join(state, 'serve.log'), 'utf8')
      : '';
    expect(r.stdout, `${r.stderr}\n${log}`).toContain('health-exit=0');
    expect(r.stdout).toMatch(/^ok: capgate /m);
    expect(log).toContain('capgate serving: admin /run/capgate/admin.sock, requests /run/capgate/request.sock');
    // Above the script's own bound on the wait for the socket (600 × 0.1 s), so a daemon that never
    // listens fails with its log instead of a bare timeout.
  }, 150_000);
});
