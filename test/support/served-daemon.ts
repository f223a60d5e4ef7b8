// A real daemon (`capgate serve`) for every test of a file, and with `vm: true` a shell inside
// its VM (VmShell): started before the file's first test, stopped and its directory removed
// after the last one, whether the tests passed or not. The daemon must exit 0 on SIGTERM.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, expect } from 'vitest';
import { serveDaemon, VmShell, type ServedDaemon } from '../cli/support/daemon.ts';

export interface DaemonForFile {
  readonly daemon: ServedDaemon;
  /** The shell that plays a VM's root process (asked for with `vm: true`). */
  readonly vm: VmShell;
  /** `--socket <admin socket>`, for a CLI command sent to the admin socket. */
  readonly admin: string[];
}

export interface DaemonForFileOptions {
  /** Start a VmShell on the request socket too. */
  vm?: boolean;
  /** Node options before the bin (e.g. a module trace). */
  nodeArgs?: string[];
  /** Added to the daemon's environment. */
  env?: () => Record<string, string>;
}

/** Registers the file's beforeAll and afterAll hooks; read the daemon in tests and later hooks. */
export function serveDaemonForFile(o: DaemonForFileOptions = {}): DaemonForFile {
  let daemon: ServedDaemon | undefined;
  let vm: VmShell | undefined;
  beforeAll(async () => {
    daemon = await serveDaemon({
      ...(o.nodeArgs !== undefined ? { nodeArgs: o.nodeArgs } : {}),
      ...(o.env !== undefined ? { env: o.env() } : {}),
    });
    if (o.vm === true) vm = new VmShell(daemon.requestSocket);
  });
  afterAll(async () => {
    vm?.close();
    if (daemon === undefined) return;
    const code = await daemon.stop();
    rmSync(daemon.dir, { recursive: true, force: true });
    expect(code, `the daemon's exit code; its output:\n${daemon.output()}`).toBe(0);
  });
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not started: read it in a test or a hook, not at import`);
    return value;
  };
  return {
    get daemon() {
      return started(daemon, 'the daemon');
    },
    get vm() {
      return started(vm, o.vm === true ? 'the VM shell' : 'no VM shell was asked for (vm: true); it');
    },
    get admin() {
      return ['--socket', started(daemon, 'the daemon').adminSocket];
    },
  };
}
