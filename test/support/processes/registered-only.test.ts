// Every process a test starts and does not wait for goes through children.ts, so it is killed
// after its test or file even when the test fails or times out. This reads the test tree and
// fails on a file that imports an asynchronous starter from node:child_process (spawn, exec,
// execFile, fork) or loads the module at run time, where the import cannot be read. Allowed:
// types, and spawnSync/execFileSync, which return only once their child has exited (host tools
// and feature probes: git, objdump, systemd-analyze --version, ...).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../cli/support/run-cli.ts';

const SYNC_ONLY = new Set(['spawnSync', 'execFileSync']);
/** The registry itself, the fixtures that leak a process on purpose (leak-check.test.ts), and this file's examples. */
const EXEMPT = [
  /^test\/support\/processes\/children\.ts$/,
  /^test\/support\/processes\/fixtures\/[^/]+\.fixture\.ts$/,
  /^test\/support\/processes\/registered-only\.test\.ts$/,
];

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return sources(rel);
    return /\.(ts|mts|js|mjs|cjs)$/.test(e.name) ? [rel] : [];
  });
}

/** What `text` takes from node:child_process that may leave a child running: one line per finding. */
function unregisteredStarters(text: string): string[] {
  const found: string[] = [];
  const statements = /import\s+(type\s+)?(?:\{([^}]*)\}|\*\s+as\s+\w+|\w+)\s+from\s+['"](?:node:)?child_process['"]/g;
  let covered = 0;
  for (const m of text.matchAll(statements)) {
    covered++;
    if (m[1] !== undefined) continue; // import type { ... }
    if (m[2] === undefined) {
      found.push(`the whole module (${m[0]})`);
      continue;
    }
    const names = m[2]
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== '' && !n.startsWith('type '))
      .map((n) => n.split(/\s+as\s+/)[0]!);
    for (const n of names) if (!SYNC_ONLY.has(n)) found.push(n);
  }
  // Any other mention in code (a dynamic import, a require) cannot be checked by reading it.
  const mentions = [...text.matchAll(/['"](?:node:)?child_process['"]/g)].length;
  if (mentions > covered) found.push(`${mentions - covered} dynamic import(s) or require(s) of child_process`);
  return found;
}

describe('processes started by tests', () => {
  it('the check itself sees what it must', () => {
    expect(unregisteredStarters(`import { spawn, spawnSync, type ChildProcess } from 'node:child_process';`)).toEqual([
      'spawn',
    ]);
    expect(unregisteredStarters(`import { execFile as run } from "child_process";`)).toEqual(['execFile']);
    expect(unregisteredStarters(`import * as cp from 'node:child_process';`)).toEqual([
      `the whole module (import * as cp from 'node:child_process')`,
    ]);
    expect(unregisteredStarters(`const { fork } = await import('node:child_process');`)).toEqual([
      '1 dynamic import(s) or require(s) of child_process',
    ]);
    expect(
      unregisteredStarters(
        `import type { ChildProcess } from 'node:child_process';\nimport { execFileSync } from 'node:child_process';`,
      ),
    ).toEqual([]);
  });

  it('are started through test/support/processes/children.ts, unless waited for synchronously', () => {
    const offenders = sources('test')
      .filter((f) => !EXEMPT.some((re) => re.test(f)))
      .flatMap((f) =>
        unregisteredStarters(fs.readFileSync(path.join(REPO_ROOT, f), 'utf8')).map((what) => `${f}: ${what}`),
      );
    expect(
      offenders,
      'start children with spawnChild, runChild or forkChild (test/support/processes/children.ts)',
    ).toEqual([]);
  });
});
