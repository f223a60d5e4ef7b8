// `capgate policy push --signature`, `policy inspect` and `policy bundle`, run as the real CLI
// against a real daemon: a folder and a ConfigMap made from local signed files, and from what a
// daemon has bound; the ConfigMap laid out as the kubelet mounts it and read by another daemon
// as its policy directory; bad input refused with what to do.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonConfig, spawnDaemon, type DaemonProcess } from '../daemon/helpers/daemon-process.ts';
import { asPolicy, sha256 } from '../daemon/helpers/fixtures.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { runCli } from '../cli/support/run-cli.ts';
import { KubeletVolume } from '../support/kubelet-volume.ts';
import { makeKey, sign, type MinisignKey } from '../support/minisign.ts';

let dir: string;
let key: MinisignKey;
let wasm: string;
const running: DaemonProcess[] = [];

beforeAll(() => {
  dir = tempDir('capgate-bundle-');
  key = makeKey(dir, 'fleet');
  wasm = path.join(dir, 'build', 'memlock-cap.wasm');
  fs.mkdirSync(path.dirname(wasm));
  fs.writeFileSync(wasm, asPolicy('memlock-cap'));
  sign(key, wasm, { trustedComment: 'memlock-cap for the fleet' });
});

afterAll(async () => {
  for (const d of running) if (d.child.exitCode === null) await d.stop();
  removeTempDirs();
});

async function start(extra: object = {}): Promise<DaemonProcess> {
  const trust = { trustRoots: [{ name: 'fleet-ci', publicKey: key.publicKey }], requireSignatures: true };
  const d = await spawnDaemon(daemonConfig(tempDir('capgate-bundle-daemon-'), { policies: { ...trust, ...extra } }));
  running.push(d);
  return d;
}

interface ConfigMapDoc {
  kind: string;
  metadata: { name: string; namespace: string };
  data: Record<string, string>;
  binaryData: Record<string, string>;
}

describe('capgate policy bundle', () => {
  it('writes a folder and a ConfigMap from local signed files, which a daemon reads as its policy directory once the kubelet mounts it', async () => {
    const out = path.join(dir, 'local', 'policies');
    const r = await runCli([
      'policy',
      'bundle',
      '--out',
      out,
      wasm,
      '--bind',
      'set-memlock=memlock-cap',
      '--configmap',
      'capgate-policies',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['bindings.yaml', 'memlock-cap.wasm', 'memlock-cap.wasm.minisig']);
    expect(YAML.parse(fs.readFileSync(path.join(out, 'bindings.yaml'), 'utf8'))).toEqual({
      bindings: { 'set-memlock': { policy: 'memlock-cap', sha256: sha256(asPolicy('memlock-cap')) } },
    });
    const cm = YAML.parse(fs.readFileSync(path.join(dir, 'local', 'capgate-policies.yaml'), 'utf8')) as ConfigMapDoc;
    expect(cm).toMatchObject({
      kind: 'ConfigMap',
      metadata: { name: 'capgate-policies', namespace: 'capgate-system' },
    });
    expect(Buffer.from(cm.binaryData['memlock-cap.wasm']!, 'base64').equals(Buffer.from(asPolicy('memlock-cap')))).toBe(
      true,
    );
    expect(cm.data['memlock-cap.wasm.minisig']).toBe(fs.readFileSync(`${wasm}.minisig`, 'utf8'));

    // The kubelet's view of that ConfigMap, as a daemon's policies.directory.
    const volume = new KubeletVolume(path.join(dir, 'volume'));
    volume.publish({
      ...cm.data,
      ...Object.fromEntries(Object.entries(cm.binaryData).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    });
    const d = await start({ directory: volume.root });
    expect((await d.admin.getBinding('set-memlock')).binding).toMatchObject({
      policy: 'memlock-cap',
      source: 'directory',
      keyId: key.keyId,
    });
  });

  it('pushes with --signature, shows the signer in inspect, and bundles what a daemon has bound', async () => {
    const d = await start();
    const push = await runCli([
      'policy',
      'push',
      wasm,
      '--name',
      'memlock-cap',
      '--signature',
      `${wasm}.minisig`,
      '--activate',
      'set-memlock',
      '--socket',
      d.adminSocket,
    ]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout).toContain(`signed by fleet-ci (key ${key.keyId})`);
    const inspect = await runCli(['policy', 'inspect', 'memlock-cap', '--socket', d.adminSocket]);
    expect(inspect.stdout).toMatch(new RegExp(`signed by\\s+fleet-ci \\(key ${key.keyId}\\)`));
    expect(inspect.stdout).toMatch(/trusted comment\s+memlock-cap for the fleet/);

    const out = path.join(dir, 'from-daemon');
    const r = await runCli(['policy', 'bundle', '--out', out, '--socket', d.adminSocket]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(out, 'memlock-cap.wasm')).equals(Buffer.from(asPolicy('memlock-cap')))).toBe(true);
    expect(fs.readFileSync(path.join(out, 'memlock-cap.wasm.minisig'), 'utf8')).toBe(
      fs.readFileSync(`${wasm}.minisig`, 'utf8'),
    );
    expect(fs.readFileSync(path.join(out, 'bindings.yaml'), 'utf8')).toContain(
      `sha256: ${sha256(asPolicy('memlock-cap'))}`,
    );
  });

  // Ten CLI processes one after another: minutes on a machine shared with other suites.
  it('refuses bad input with what to do, and writes nothing', { timeout: 300_000 }, async () => {
    const d = await start();
    const cases: Array<[string[], RegExp]> = [
      [['--out', path.join(dir, 'x1'), wasm, '--bind', 'set-nice=memlock-cap'], /unknown operation "set-nice"/],
      [['--out', path.join(dir, 'x2'), wasm, '--bind', 'set-memlock=other'], /no file named other is bundled/],
      [['--out', path.join(dir, 'x3'), wasm, '--bind', 'set-memlock'], /must be <operation>=<policy>/],
      [['--out', path.join(dir, 'local', 'policies'), wasm], /is not empty/],
      [['--out', path.join(dir, 'x4'), wasm, '--configmap', 'Bad_Name'], /not a Kubernetes object name/],
      [['--out', path.join(dir, 'x5'), `Bad=${wasm}`], /"Bad" .* is not a policy name/],
      [['--out', path.join(dir, 'x6'), '--socket', d.adminSocket], /the daemon has nothing bound/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['policy', 'bundle', ...args]);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    // A .minisig beside the file that is not a signature.
    const broken = path.join(dir, 'broken', 'memlock-cap.wasm');
    fs.mkdirSync(path.dirname(broken));
    fs.writeFileSync(broken, asPolicy('memlock-cap'));
    fs.writeFileSync(`${broken}.minisig`, 'not a signature\n');
    const r = await runCli(['policy', 'bundle', '--out', path.join(dir, 'x7'), broken]);
    expect(r.stderr).toMatch(/memlock-cap\.wasm\.minisig is not a minisign signature/);
    for (const x of ['x1', 'x2', 'x3', 'x4', 'x5', 'x7'])
      expect(fs.existsSync(path.join(dir, x)) ? fs.readdirSync(path.join(dir, x)) : [], x).toEqual([]);
    // push --signature with a file that is not one: refused before anything is uploaded.
    const push = await runCli([
      'policy',
      'push',
      wasm,
      '--name',
      'memlock-cap',
      '--signature',
      `${broken}.minisig`,
      '--socket',
      d.adminSocket,
    ]);
    expect(push.code).toBe(2);
    expect(push.stderr).toMatch(/is not a minisign signature: a minisign signature file has 4 lines/);
    expect((await d.admin.listPolicies()).policies).toEqual([]);
  });
});
