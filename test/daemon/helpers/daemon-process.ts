// A real capgate daemon in its own process: the compiled daemon entry (dist/runtime/daemon/main.js,
// kept fresh by test/global-setup.ts), as it ships, on sockets in a temporary directory. Resolves
// once it logged "capgate ready".
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CapgateAdminClient } from '../../../runtime/client/index.ts';
import type { DaemonConfigInput } from '../../../runtime/daemon/config.ts';
import { spawnChild, type ChildScope } from '../../support/processes/children.ts';
import type { SeamFlags } from './seamed-daemon-main.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const DAEMON_MAIN = path.join(REPO_ROOT, 'dist/runtime/daemon/main.js');
/** The daemon with the engine's test seams, compiled like the daemon (tsconfig.build.json lists it). */
const SEAMED_MAIN = path.join(REPO_ROOT, 'dist/test/daemon/helpers/seamed-daemon-main.js');

export interface DaemonProcess {
  child: ChildProcess;
  pid: number;
  adminSocket: string;
  requestSocket: string;
  admin: CapgateAdminClient;
  /** Every JSON log line so far. */
  logs: Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL and wait for the exit. */
  kill9(): Promise<void>;
}

/**
 * Sockets and state in `dir`. The machine these tests run on is shared and often loaded far
 * beyond its 2 cores, so evaluation and request deadlines are generous unless a test sets them.
 */
export function daemonConfig(dir: string, extra: DaemonConfigInput = {}): DaemonConfigInput {
  return {
    runDir: path.join(dir, 'run'),
    stateDir: path.join(dir, 'state'),
    log: { level: 'info' },
    engine: { limits: { deadlineMs: 2000 } },
    request: { deadlineMs: 10_000 },
    ...extra,
  };
}

/**
 * `scope`: see children.ts; 'file' for a daemon that later tests of the file use.
 * `seams`: the engine's test seams (seamed-daemon-main.ts), for faults hard to reach otherwise.
 * `wrap`: a command that execs the daemon's command line (given as its last arguments), keeping its pid.
 */
export async function spawnDaemon(
  config: DaemonConfigInput,
  o: { scope?: ChildScope; seams?: SeamFlags; wrap?: string[] } = {},
): Promise<DaemonProcess> {
  const args =
    o.seams === undefined
      ? [DAEMON_MAIN, '--json', JSON.stringify(config)]
      : [SEAMED_MAIN, '--json', JSON.stringify(config), '--seams', JSON.stringify(o.seams)];
  const argv = [...(o.wrap ?? []), process.execPath, ...args];
  const child = spawnChild(argv[0]!, argv.slice(1), {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    scope: o.scope,
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === 'capgate ready') resolve(entry);
        } catch {
          // not a log line
        }
      }
    });
    void exited.then(({ code, signal }) =>
      reject(new Error(`the daemon exited (code ${code}, signal ${signal}) before it was ready:\n${stderr}`)),
    );
  });
  const entry = await ready;
  const adminSocket = String(entry.adminSocket);
  // Generous: the machine is shared, and a policy upload compiles it.
  const admin = new CapgateAdminClient({ socketPath: adminSocket, timeoutMs: 180_000 });
  return {
    child,
    pid: child.pid!,
    adminSocket,
    requestSocket: String(entry.requestSocket),
    admin,
    logs,
    exited,
    stop() {
      admin.close();
      child.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      admin.close();
      child.kill('SIGKILL');
      await exited;
    },
  };
}
