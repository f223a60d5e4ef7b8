// Attack: code planted in a shared temporary directory runs as root.
//
// A run-time TypeScript transformer (tsx) caches its output in $TMPDIR/tsx-<euid> and loads what
// it finds there without asking who owns the directory. uid 65534 creates that directory before
// root first runs capgate, lets root fill it, then rewrites the entries: the next `capgate`
// run as root would execute the attacker's code. capgate must load only its compiled JavaScript,
// and write nothing into TMPDIR.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/support/run-cli.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { NOBODY, runAsNobody, shAsNobody, stickyTmp } from './support/nobody.ts';

afterAll(removeTempDirs);

// Run by uid 65534: prepends a statement to every cached module that records the uid it ran as.
const PLANT = `
const fs = require('node:fs');
const [dir, marker] = process.argv.slice(1);
for (const name of fs.readdirSync(dir)) {
  const file = dir + '/' + name;
  let text = fs.readFileSync(file, 'utf8');
  const stmt = 'process.getBuiltinModule("node:fs").appendFileSync(' + JSON.stringify(marker) + ', "ran as uid " + process.getuid() + "\\\\n");';
  try {
    const entry = JSON.parse(text);
    entry.code = stmt + entry.code;
    text = JSON.stringify(entry);
  } catch {
    text = stmt + text;
  }
  fs.writeFileSync(file + '.new', text);
  fs.renameSync(file + '.new', file); // the directory is ours: root's files in it are too, in effect
}
console.log(fs.readdirSync(dir).length);
`;

describe('a cache planted in a TMPDIR owned by another user', () => {
  it('is never created, read or run by capgate running as root', async () => {
    const base = tempDir('capgate-planted-');
    fs.chmodSync(base, 0o755);
    const tmp = stickyTmp(base); // like /tmp after a reboot
    const cache = path.join(tmp, `tsx-${process.getuid!()}`);
    const marker = path.join(tmp, 'planted-code-ran');
    await shAsNobody(`mkdir -m 0777 ${cache}`); // the attacker was first
    expect(fs.statSync(cache).uid).toBe(NOBODY);

    const env = { TMPDIR: tmp };
    const first = await runCli(['--version'], { env });
    expect(first.code, first.stderr).toBe(0);
    // Nothing was written for a later run to pick up.
    expect(fs.readdirSync(cache)).toEqual([]);

    // The attacker rewrites whatever is there (on a transforming build: every module capgate loads).
    const planted = await runAsNobody(['node', '-e', PLANT, cache, marker], {
      env: { PATH: process.env.PATH, HOME: '/' },
    });
    expect(planted.code, planted.stderr).toBe(0);

    const second = await runCli(['--version'], { env });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    expect(fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8') : 'nothing ran').toBe('nothing ran');
  });
});
