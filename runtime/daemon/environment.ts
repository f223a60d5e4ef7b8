// The host facts the daemon's defaults depend on: the uid it runs as, its working directory, its
// environment variables (CAPGATE_RUN_DIR, CAPGATE_ADMIN_SOCKET, CAPGATE_REQUEST_SOCKET) and its
// cores. Kept apart from config.ts so that nothing needing only these loads the config schema.
import os from 'node:os';
import { builtInDirs, defaultRunDir, type LocationEnvironment } from './socket-locations.ts';

export interface Environment extends LocationEnvironment {
  cores: number;
}

/** Default directories (socket-locations.ts: CAPGATE_RUN_DIR, else by uid), shared with the clients. */
export function defaultDirs(env: LocationEnvironment): { runDir: string; stateDir: string } {
  return { runDir: defaultRunDir(env), stateDir: builtInDirs(env).stateDir };
}

export function currentEnvironment(): Environment {
  return { uid: process.getuid?.() ?? 0, cwd: process.cwd(), vars: process.env, cores: os.availableParallelism() };
}
