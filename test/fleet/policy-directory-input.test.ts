// The policy directory's inputs, read in-process: bindings.yaml, the config keys under
// `policies`, and the trust of the directory's path (path-trust.ts) in each layout the kubelet
// or an operator makes, including a read-only mount (in a mount namespace of its own).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, resolveConfig } from '../../runtime/daemon/config.ts';
import { readTrustedEntry, trustedDataDirectory } from '../../runtime/daemon/path-trust.ts';
import { formatBindingsFile, parseBindingsFile } from '../../runtime/daemon/policy-directory/bindings-file.ts';
import { readDirectorySnapshot } from '../../runtime/daemon/policy-directory/read-snapshot.ts';
import { REPO_ROOT } from '../daemon/helpers/daemon-process.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { KubeletVolume } from '../support/kubelet-volume.ts';
import { makeKey } from '../support/minisign.ts';

afterAll(removeTempDirs);
const env = { uid: 0, cwd: '/', cores: 2 };

describe('bindings.yaml', () => {
  it('round-trips what capgate policy bundle writes', () => {
    const b = [{ operation: 'set-memlock' as const, policy: 'memlock-cap', sha256: 'a'.repeat(64) }];
    expect(parseBindingsFile(formatBindingsFile(b))).toEqual(b);
    expect(parseBindingsFile('bindings: {}')).toEqual([]);
    expect(parseBindingsFile('bindings:')).toEqual([]);
  });

  it('refuses every malformed file with what is wrong', () => {
    const cases: Array<[string, RegExp]> = [
      ['bindings: [', /not valid YAML/],
      ['- a', /must be a mapping with the key "bindings"/],
      ['set-memlock: memlock-cap', /unknown key "set-memlock" \(known: bindings\)/],
      ['bindings: [a]', /must map operations to policies/],
      ['bindings:\n  set-nice: {policy: a}', /unknown operation "set-nice"/],
      ['bindings:\n  set-memlock: memlock-cap', /must be a mapping with "policy"/],
      ['bindings:\n  set-memlock: {policy: Bad}', /policy must be a policy name/],
      ['bindings:\n  set-memlock: {policy: a, sha256: ABC}', /sha256 must be 64 lower-case hex digits/],
      ['bindings:\n  set-memlock: {policy: a, revision: 2}', /unknown key "revision" \(known: policy, sha256\)/],
      ['x: &a [1]\nbindings:\n  set-memlock: *a', /not valid YAML|alias/i],
    ];
    for (const [text, message] of cases) expect(() => parseBindingsFile(text), text).toThrow(message);
  });
});

describe('config keys under policies', () => {
  const key = makeKey(tempDir('capgate-cfgkey-'), 'k');

  it('reads trust roots, requireSignatures and a directory relative to the config file', () => {
    const dir = tempDir('capgate-cfg-');
    const file = path.join(dir, 'config.yaml');
    fs.writeFileSync(
      file,
      YAML.stringify({
        policies: {
          trustRoots: [{ name: 'release team', publicKey: key.publicKey }],
          requireSignatures: true,
          directory: 'policies',
        },
      }),
      { mode: 0o600 },
    );
    const c = resolveConfig(loadConfigFile(file), env);
    expect(c.policies).toEqual({
      trustRoots: [{ name: 'release team', publicKey: key.publicKey }],
      requireSignatures: true,
      directory: path.join(dir, 'policies'),
      directoryPollS: 30,
    });
    expect(resolveConfig({}, env).policies).toEqual({ trustRoots: [], requireSignatures: false, directoryPollS: 30 });
  });

  it('names the key and the fix for each bad value', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ policies: { requireSignatures: 'yes' } }, /policies\.requireSignatures: must be true or false, got "yes"/],
      [{ policies: { trustRoots: 'RWQ…' } }, /policies\.trustRoots: must be a list/],
      [
        { policies: { trustRoots: [{ name: 'a' }] } },
        /trustRoots\[0\]\.publicKey: is missing; must be a minisign public key/,
      ],
      [
        { policies: { trustRoots: [{ name: 'a', publicKey: key.publicKey, id: 1 }] } },
        /trustRoots\[0\]\.id: unknown key \(known: name, publicKey\)/,
      ],
      [
        {
          policies: {
            trustRoots: [
              { name: 'a', publicKey: key.publicKey },
              { name: 'a', publicKey: key.publicKey },
            ],
          },
        },
        /trustRoots\[1\]\.name "a" is listed twice/,
      ],
      [
        { policies: { trustRoots: [{ name: 'a b/c', publicKey: key.publicKey }] } },
        /trustRoots\[0\]\.name: must be 1-64 letters, digits, spaces/,
      ],
      [
        { policies: { trustRoots: [{ name: 'a', publicKey: 'RWQx' }] } },
        /trustRoots\[0\] \(a\): the public key .* Fix: copy the second line/,
      ],
      [
        {
          policies: {
            trustRoots: [
              { name: 'a', publicKey: key.publicKey },
              { name: 'b', publicKey: key.publicKey },
            ],
          },
        },
        /same key id/,
      ],
      [{ policies: { directory: '' } }, /policies\.directory: must be a string of at least 1 characters/],
      [{ policies: { directoryPollS: 0 } }, /policies\.directoryPollS: must be an integer from 1 to 86400, got 0/],
      [
        { policies: { signatures: true } },
        /policies\.signatures: unknown key \(known: trustRoots, requireSignatures, directory, directoryPollS\)/,
      ],
    ];
    for (const [input, message] of cases) {
      expect(() => resolveConfig(input as never, env), JSON.stringify(input)).toThrow(ConfigError);
      expect(() => resolveConfig(input as never, env), JSON.stringify(input)).toThrow(message);
    }
  });
});

describe('trust of the policy directory', () => {
  const files = { 'bindings.yaml': 'bindings: {}\n' };

  it('reads a kubelet volume (drwxrwxrwt root) through ..data, one generation at a time', () => {
    const v = new KubeletVolume(path.join(tempDir('capgate-pt-'), 'vol'));
    const g = v.publish(files);
    const d = trustedDataDirectory(v.root, 'the policy directory');
    expect(d).toMatchObject({ dataDir: path.join(v.root, g), generation: g, readOnly: false });
    expect(readTrustedEntry(d, 'bindings.yaml', 'x', 1024).toString()).toBe(files['bindings.yaml']);
    expect(() => readTrustedEntry(d, 'bindings.yaml', 'x', 4)).toThrow(/more than the 4 allowed/);
  });

  it('refuses a world-writable directory without the sticky bit, a sticky one another user owns, and entries others own', () => {
    const base = tempDir('capgate-pt-');
    const open = path.join(base, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    fs.writeFileSync(path.join(open, 'bindings.yaml'), 'bindings: {}');
    expect(() => readDirectorySnapshot(open, 1024)).toThrow(/writable by group and others \(mode 0777\)/);
    fs.chmodSync(open, 0o1777);
    fs.chownSync(open, 65534, 65534);
    expect(() => readDirectorySnapshot(open, 1024)).toThrow(/owned by uid 65534/);
    fs.chownSync(open, 0, 0);
    expect(readDirectorySnapshot(open, 1024).bindings).toEqual([]);
    // A link instead of a file: refused, whoever owns it.
    fs.symlinkSync('bindings.yaml', path.join(open, 'x.wasm'));
    expect(() => readDirectorySnapshot(open, 1024)).toThrow(/x\.wasm is a symlink/);
    expect(() => readDirectorySnapshot(path.join(base, 'absent'), 1024)).toThrow(/absent does not exist: create it/);
  });

  const canMount = spawnSync('unshare', ['-m', 'true']).status === 0;
  if (!canMount)
    console.log('unshare -m is not permitted here (no CAP_SYS_ADMIN): the read-only mount case is not tried');

  it.skipIf(!canMount)(
    'accepts a directory others could write on a read-only mount (an image or ConfigMap volume), and nothing else changes',
    () => {
      const base = tempDir('capgate-pt-ro-');
      const dir = path.join(base, 'policies');
      fs.mkdirSync(dir);
      fs.chmodSync(dir, 0o777);
      fs.writeFileSync(path.join(dir, 'bindings.yaml'), 'bindings: {}\n', { mode: 0o666 });
      const script = `import('${path.join(REPO_ROOT, 'dist/runtime/daemon/policy-directory/read-snapshot.js')}').then((m) => { const s = m.readDirectorySnapshot(process.argv[1], 1024); console.log(JSON.stringify({ readOnly: s.source.readOnly, bindings: s.bindings })); })`;
      const sh =
        'mount --make-rprivate / && mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 90\nexec "$2" -e "$3" "$1"';
      const r = spawnSync('unshare', ['-m', 'sh', '-c', sh, 'sh', dir, process.execPath, script], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ readOnly: true, bindings: [] });
      // The same directory, writable: refused.
      expect(() => readDirectorySnapshot(dir, 1024)).toThrow(/writable by group and others/);
    },
  );
});
