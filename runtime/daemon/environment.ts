// The host facts the daemon's defaults depend on: the uid it runs as, its working directory and
// its cores. Kept apart from config.ts so that the CLI's client commands, which only need the
// default socket paths, load neither the config schema nor the engine.
import os from 'node:os';
import path from 'node:path';

export interface Environment {
  uid: number;
  cwd: string;
  cores: number;
}

export function defaultDirs(env: Environment): { runDir: string; stateDir: string } {
  if (env.uid === 0) return { runDir: '/run/capgate', stateDir: '/var/lib/capgate' };
  return { runDir: path.join(env.cwd, '.capgate', 'run'), stateDir: path.join(env.cwd, '.capgate', 'state') };
}

export function currentEnvironment(): Environment {
  return { uid: process.getuid?.() ?? 0, cwd: process.cwd(), cores: os.availableParallelism() };
}
