// `npm install` on a fresh clone leaves `git status` clean: the lockfile agrees with package.json
// (npm rewrites it otherwise), and what the install and the build write is ignored. The clone is
// of the working tree's tracked files as they are now, so an uncommitted package.json change is
// checked too; npm runs with an empty user config, as on a machine nobody configured.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../cli/support/run-cli.ts';
import { npmEnvironment, run } from './support/release.ts';

let base: string | undefined;
afterAll(() => {
  if (base !== undefined) fs.rmSync(base, { recursive: true, force: true });
});

function git(cwd: string, args: string[]): string {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

it('npm install and the build on a fresh clone leave git status clean', async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'capgate-clone-'));
  const clone = path.join(base, 'capgate');
  fs.mkdirSync(clone);
  for (const file of git(REPO_ROOT, ['ls-files', '-z']).split('\0').filter(Boolean)) {
    const from = path.join(REPO_ROOT, file);
    if (!fs.existsSync(from)) continue; // deleted in the working tree, not yet committed
    fs.mkdirSync(path.dirname(path.join(clone, file)), { recursive: true });
    fs.copyFileSync(from, path.join(clone, file));
    fs.chmodSync(path.join(clone, file), fs.statSync(from).mode);
  }
  git(clone, ['init', '-q']);
  git(clone, ['add', '-A']);
  git(clone, ['-c', 'user.name=test', '-c', 'user.email=test@invalid', 'commit', '-q', '-m', 'the working tree']);

  const userconfig = path.join(base, 'npmrc');
  fs.writeFileSync(userconfig, '');
  const env = { ...npmEnvironment(), npm_config_userconfig: userconfig };
  // Scripts off: the native modules build only inside node_modules; the build is run next, as
  // the `dependencies` script would.
  const install = await run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: clone,
    env,
  });
  expect(install.code, install.stderr).toBe(0);
  const build = await run('npm', ['run', 'build'], { cwd: clone, env });
  expect(build.code, build.stdout + build.stderr).toBe(0);
  expect(fs.existsSync(path.join(clone, 'dist', 'runtime', 'cli', 'main.js'))).toBe(true);

  expect(git(clone, ['status', '--porcelain', '--untracked-files=all']), git(clone, ['diff'])).toBe('');
}, 300_000);
