// The daemon's directories, checked (path-trust.ts) before anything in them is opened, and
// created when missing: the run directory 0755 (unprivileged clients must reach the request
// socket in it; only its owner may add, rename or remove an entry), the state directory 0700.
import path from 'node:path';
import type { DaemonConfig } from './config.ts';
import { ensureTrustedDirectory } from './path-trust.ts';

export const RUN_DIR_MODE = 0o755;
export const STATE_DIR_MODE = 0o700;

export function prepareDirectories(config: DaemonConfig): void {
  ensureTrustedDirectory(config.runDir, 'the run directory', RUN_DIR_MODE);
  ensureTrustedDirectory(config.stateDir, 'the state directory', STATE_DIR_MODE);
  // Socket and database paths may be set outside those directories: theirs must be trusted too.
  for (const [key, file, dir, mode] of [
    ['adminSocket', config.adminSocket, config.runDir, RUN_DIR_MODE],
    ['requestSocket', config.requestSocket, config.runDir, RUN_DIR_MODE],
    ['database', config.database, config.stateDir, STATE_DIR_MODE],
  ] as const) {
    const parent = path.dirname(path.resolve(file));
    if (parent !== path.resolve(dir)) ensureTrustedDirectory(parent, `the directory of ${key} (${file})`, mode);
  }
}
