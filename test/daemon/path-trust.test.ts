// path-trust.ts on real directories, owners and modes (the daemon-level attacks are in
// test/security/path-trust.test.ts): symlinks on the way, missing parents, the sticky exception.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureTrustedDirectory, readTrustedFile, UntrustedPathError } from '../../runtime/daemon/path-trust.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';

const NOBODY = 65534;
afterAll(removeTempDirs);

const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof UntrustedPathError) return e.message;
    throw e;
  }
  throw new Error('accepted; it should have been refused');
};

describe('ensureTrustedDirectory', () => {
  it('creates every missing component with the mode asked for, whatever the umask', () => {
    const base = tempDir('capgate-trust-unit-');
    const target = path.join(base, 'a', 'b', 'run');
    const previous = process.umask(0o077);
    try {
      ensureTrustedDirectory(target, 'the run directory', 0o755);
    } finally {
      process.umask(previous);
    }
    for (const d of [path.join(base, 'a'), path.join(base, 'a', 'b'), target])
      expect(fs.lstatSync(d).mode & 0o7777).toBe(0o755);
    // Idempotent: an existing good directory is accepted as it is.
    ensureTrustedDirectory(target, 'the run directory', 0o700);
    expect(fs.lstatSync(target).mode & 0o7777).toBe(0o755);
  });

  it('follows a symlink on the way only when root (or the daemon) owns it, and checks where it leads', () => {
    const base = tempDir('capgate-trust-unit-');
    const real = path.join(base, 'real');
    fs.mkdirSync(real, { mode: 0o755 });
    const rootLink = path.join(base, 'var-run');
    fs.symlinkSync(real, rootLink); // like /var/run -> /run
    ensureTrustedDirectory(path.join(rootLink, 'capgate'), 'the run directory', 0o755);
    expect(fs.lstatSync(path.join(real, 'capgate')).isDirectory()).toBe(true);

    const theirLink = path.join(base, 'their-link');
    fs.symlinkSync(real, theirLink);
    fs.lchownSync(theirLink, NOBODY, NOBODY);
    const m = refusal(() => ensureTrustedDirectory(path.join(theirLink, 'capgate'), 'the run directory', 0o755));
    expect(m).toContain(theirLink);
    expect(m).toMatch(/symlink owned by uid 65534/);

    // A root-owned link into a directory others may write: the target's parents are checked.
    const open = path.join(base, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    const intoOpen = path.join(base, 'into-open');
    fs.symlinkSync(open, intoOpen);
    expect(refusal(() => ensureTrustedDirectory(path.join(intoOpen, 'capgate'), 'the run directory', 0o755))).toMatch(
      /writable by group and others/,
    );
    expect(fs.readdirSync(open)).toEqual([]);
  });

  it('accepts a root-owned sticky parent, refuses one another user owns, and refuses a sticky target', () => {
    const base = tempDir('capgate-trust-unit-');
    const sticky = path.join(base, 'sticky');
    fs.mkdirSync(sticky);
    fs.chmodSync(sticky, 0o1777);
    ensureTrustedDirectory(path.join(sticky, 'state'), 'the state directory', 0o700);
    expect(refusal(() => ensureTrustedDirectory(sticky, 'the state directory', 0o700))).toMatch(
      /writable by group and others \(mode 01777\)/,
    );
    fs.chownSync(sticky, NOBODY, NOBODY);
    expect(refusal(() => ensureTrustedDirectory(path.join(sticky, 'other'), 'the state directory', 0o700))).toMatch(
      /its parent .* is owned by uid 65534/,
    );
  });

  it('refuses a directory that exists but is not one', () => {
    const base = tempDir('capgate-trust-unit-');
    const file = path.join(base, 'file');
    fs.writeFileSync(file, '');
    expect(refusal(() => ensureTrustedDirectory(file, 'the state directory', 0o700))).toMatch(/is not a directory/);
    expect(refusal(() => ensureTrustedDirectory(path.join(file, 'below'), 'the state directory', 0o700))).toMatch(
      /not a directory/,
    );
  });
});

describe('readTrustedFile', () => {
  it('reads a good file and refuses one another user owns or may write', () => {
    const base = tempDir('capgate-trust-unit-');
    const file = path.join(base, 'config.yaml');
    fs.writeFileSync(file, 'log: {level: warn}\n', { mode: 0o644 });
    expect(readTrustedFile(file, 'the config file')).toBe('log: {level: warn}\n');
    fs.chmodSync(file, 0o646);
    expect(refusal(() => readTrustedFile(file, 'the config file'))).toMatch(/writable by others/);
    fs.chmodSync(file, 0o644);
    fs.chownSync(file, NOBODY, NOBODY);
    expect(refusal(() => readTrustedFile(file, 'the config file'))).toMatch(/owned by uid 65534/);
  });
});
