// policies.directory against a real daemon process, fed as the kubelet feeds a ConfigMap volume
// (test/support/kubelet-volume.ts): signed policies and bindings.yaml reconciled at start, a
// `..data` swap picked up, torn and invalid updates refused with the last good state kept and
// the refusal in health, metrics and the log, the admin socket kept off what the directory owns,
// the directory as the only source of truth across a restart on an empty state directory, a
// compile refused because the compile launcher died read again after its Retry-After, and a
// policy whose bytes kill the compile process refused for good after the second death.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonConfigInput } from '../../runtime/daemon/config.ts';
import type { HealthResponse } from '../../runtime/wire/index.ts';
import { daemonConfig, spawnDaemon, type DaemonProcess } from '../daemon/helpers/daemon-process.ts';
import { asPolicy, MiB, sha256, vmFor, waitFor } from '../daemon/helpers/fixtures.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { VmAgent } from '../daemon/helpers/vm-agent-handle.ts';
import { KubeletVolume } from '../support/kubelet-volume.ts';
import { makeKey, sign, type MinisignKey } from '../support/minisign.ts';
import { componentFromWat, policyWat } from '../support/components.ts';
import { descendantsRunning as below, readProc } from '../support/processes/proc-table.ts';
import { waitFor as waitForProbe, waitUntil } from '../support/wait.ts';
import { killMidCompile, noCompileProcess, slowPolicy } from '../support/kill-mid-compile.ts';

let dir: string;
let key: MinisignKey;
let stranger: MinisignKey;
let volume: KubeletVolume;
let agent: VmAgent;
let target: number;
let daemon: DaemonProcess;
const running: DaemonProcess[] = [];
const signed: Record<'memlock-cap' | 'vfio-only', { bytes: Uint8Array; sig: string; sha: string }> = {} as never;

beforeAll(async () => {
  dir = tempDir('capgate-policydir-');
  key = makeKey(dir, 'fleet');
  stranger = makeKey(dir, 'stranger');
  for (const name of ['memlock-cap', 'vfio-only'] as const) {
    const file = path.join(dir, `${name}.wasm`);
    fs.writeFileSync(file, asPolicy(name));
    signed[name] = {
      bytes: asPolicy(name),
      sig: sign(key, file, { trustedComment: `${name} for the fleet` }),
      sha: sha256(asPolicy(name)),
    };
  }
  volume = new KubeletVolume(path.join(dir, 'policies'));
  agent = await VmAgent.start();
  target = await agent.spawnTarget();
});

afterAll(async () => {
  await agent?.stop();
  for (const d of running) if (d.child.exitCode === null) await d.stop();
  removeTempDirs();
});

function config(extra: Partial<NonNullable<DaemonConfigInput['policies']>> = {}): DaemonConfigInput {
  // A poll of an hour: what these tests see is the watch, not the fallback.
  return daemonConfig(dir, {
    policies: {
      trustRoots: [{ name: 'fleet-ci', publicKey: key.publicKey }],
      requireSignatures: true,
      directory: volume.root,
      directoryPollS: 3600,
      ...extra,
    },
  });
}

async function start(c: DaemonConfigInput): Promise<DaemonProcess> {
  const d = await spawnDaemon(c, { scope: 'file' }); // later tests of the file use it
  running.push(d);
  return d;
}

const bindingsYaml = (policy: string, pin?: string): string =>
  `bindings:\n  set-memlock:\n    policy: ${policy}\n${pin ? `    sha256: ${pin}\n` : ''}`;

function generation(
  policy: 'memlock-cap' | 'vfio-only',
  extra: Record<string, Uint8Array | string> = {},
): Record<string, Uint8Array | string> {
  return {
    'memlock-cap.wasm': signed['memlock-cap'].bytes,
    'memlock-cap.wasm.minisig': signed['memlock-cap'].sig,
    'vfio-only.wasm': signed['vfio-only'].bytes,
    'vfio-only.wasm.minisig': signed['vfio-only'].sig,
    'bindings.yaml': bindingsYaml(policy, signed[policy].sha),
    ...extra,
  };
}

const ask = async (d: DaemonProcess): Promise<string> =>
  (await agent.requestOnce(d.requestSocket, target, 4n * MiB)).reason;

/** Waits until the daemon applied generation `name` (through the watch). */
const applied = (d: DaemonProcess, name: string): Promise<HealthResponse> =>
  waitFor(
    async () => {
      const h = await d.admin.health();
      return h.detail?.policyDirectory?.appliedFrom === path.join(volume.root, name) &&
        h.detail.policyDirectory.error === null
        ? h
        : undefined;
    },
    `generation ${name} applied`,
    2000,
  );

/** Waits until the daemon refused the directory's contents with a message matching `message`. */
const refused = (d: DaemonProcess, message: RegExp): Promise<HealthResponse> =>
  waitFor(
    async () => {
      const h = await d.admin.health();
      return message.test(h.detail?.policyDirectory?.error?.message ?? '') ? h : undefined;
    },
    `a refusal matching ${message}`,
    2000,
  );

describe('a policy directory fed as the kubelet feeds a ConfigMap volume', () => {
  it('is reconciled at start, before the daemon serves: signed revisions, a binding marked source directory', async () => {
    const first = volume.publish(generation('memlock-cap'));
    daemon = await start(config());
    const h = await daemon.admin.health();
    expect(h.status).toBe('ok');
    expect(h.detail?.policyDirectory).toMatchObject({
      directory: volume.root,
      appliedFrom: path.join(volume.root, first),
      error: null,
      bindingsSha256: sha256(Buffer.from(bindingsYaml('memlock-cap', signed['memlock-cap'].sha))),
    });
    expect(h.detail?.bindings).toEqual([
      expect.objectContaining({
        operation: 'set-memlock',
        policy: 'memlock-cap',
        source: 'directory',
        keyId: key.keyId,
        sha256: signed['memlock-cap'].sha,
      }),
    ]);
    const { policies } = await daemon.admin.listPolicies();
    expect(policies.map((p) => [p.name, p.revisions.map((r) => r.signature?.signer)])).toEqual([
      ['memlock-cap', ['fleet-ci']],
      ['vfio-only', ['fleet-ci']],
    ]);
    await daemon.admin.registerVm(vmFor(agent.pid, 'vm-dir', [['memory-bytes', String(64n * MiB)]]));
    expect(await ask(daemon)).toBe('allow:');
  });

  it('refuses admin-socket changes to what the directory binds, saying where to change it', async () => {
    const expected = {
      status: 409,
      code: 'conflict',
      kind: 'directory-managed',
      message: expect.stringContaining(volume.root),
      hint: expect.stringContaining('bindings.yaml'),
    };
    await expect(daemon.admin.bind('set-memlock', { policy: 'vfio-only' })).rejects.toMatchObject(expected);
    await expect(daemon.admin.unbind('set-memlock')).rejects.toMatchObject(expected);
    await expect(daemon.admin.rollback('set-memlock')).rejects.toMatchObject(expected);
    // Pushing revisions stays open: only the binding is the directory's.
    const sig = sign(key, path.join(dir, 'vfio-only.wasm'), { out: path.join(dir, 'admin.minisig') });
    expect((await daemon.admin.pushPolicy('admin-pushed', asPolicy('vfio-only'), { signature: sig })).created).toBe(
      true,
    );
    expect((await daemon.admin.getBinding('set-memlock')).binding).toMatchObject({
      policy: 'memlock-cap',
      source: 'directory',
    });
  });

  it('follows a ..data swap: the new generation is applied without a restart', async () => {
    const next = volume.publish(generation('vfio-only'));
    const h = await applied(daemon, next);
    expect(h.detail?.bindings).toEqual([expect.objectContaining({ policy: 'vfio-only', source: 'directory' })]);
    expect(await ask(daemon)).toBe('deny:vm-not-vfio');
    // And back (a rollback is shipping the previous ConfigMap again).
    const back = volume.publish(generation('memlock-cap'));
    await applied(daemon, back);
    expect(await ask(daemon)).toBe('allow:');
    // The same bytes were not stored again: one revision per policy from the directory.
    const { policies } = await daemon.admin.listPolicies();
    expect(policies.find((p) => p.name === 'memlock-cap')?.revisions).toHaveLength(1);
  });

  it('keeps the last good state through a torn or invalid update, and says so in health, metrics and the log', async () => {
    const good = volume.current!;
    const half = signed['vfio-only'].bytes.subarray(0, Math.floor(signed['vfio-only'].bytes.length / 2));
    const bad: Array<[string, Record<string, Uint8Array | string>, RegExp]> = [
      [
        'a half-written policy',
        generation('vfio-only', { 'vfio-only.wasm': half, 'bindings.yaml': bindingsYaml('vfio-only') }),
        /vfio-only\.wasm: the signature does not match these bytes/,
      ],
      [
        'a sha256 pin that does not match',
        generation('vfio-only', { 'bindings.yaml': bindingsYaml('vfio-only', signed['memlock-cap'].sha) }),
        /pins vfio-only to sha256 .* has sha256/,
      ],
      [
        'bindings.yaml that is not YAML',
        generation('vfio-only', { 'bindings.yaml': 'bindings: [unclosed' }),
        /bindings\.yaml is not valid YAML/,
      ],
      [
        'an unknown operation',
        generation('vfio-only', { 'bindings.yaml': 'bindings:\n  set-nice:\n    policy: vfio-only\n' }),
        /unknown operation "set-nice" \(operations: set-memlock\)/,
      ],
      [
        'a binding to a policy that is not there',
        generation('vfio-only', { 'bindings.yaml': bindingsYaml('absent') }),
        /binds set-memlock to absent, and there is no absent\.wasm/,
      ],
      [
        'a signature file that is not one',
        generation('vfio-only', { 'vfio-only.wasm.minisig': 'untrusted comment: x\n' }),
        /vfio-only\.wasm: the signature file is not a minisign signature: .*4 lines/,
      ],
      [
        'a policy signed by an untrusted key',
        generation('vfio-only', {
          'vfio-only.wasm.minisig': sign(stranger, path.join(dir, 'vfio-only.wasm'), {
            out: path.join(dir, 's.minisig'),
          }),
        }),
        new RegExp(`signed with key ${stranger.keyId}, which is not among`),
      ],
      [
        'an unsigned policy',
        (() => {
          const g = generation('vfio-only');
          delete g['vfio-only.wasm.minisig'];
          return g;
        })(),
        /vfio-only\.wasm: this daemon requires signed policies/,
      ],
      ['an unexpected file', generation('vfio-only', { 'bindings.yml': 'x' }), /unexpected file bindings\.yml/],
      [
        'no bindings.yaml',
        (() => {
          const g = generation('vfio-only');
          delete g['bindings.yaml'];
          return g;
        })(),
        /has no bindings\.yaml/,
      ],
      [
        'a name that is not a policy name',
        generation('vfio-only', { 'Bad Name.wasm': 'x' }),
        /"Bad Name" is not a policy name/,
      ],
    ];
    for (const [what, files, message] of bad) {
      volume.publish(files);
      const h = await refused(daemon, message);
      expect(h.status, what).toBe('degraded');
      expect(h.detail?.problems, what).toEqual([
        expect.objectContaining({ kind: 'policy-directory', directory: volume.root }),
      ]);
      expect(h.detail?.policyDirectory?.appliedFrom, what).toBe(path.join(volume.root, good));
      expect(h.detail?.bindings, what).toEqual([
        expect.objectContaining({ policy: 'memlock-cap', source: 'directory' }),
      ]);
    }
    // A swap to a generation that is not there (the kubelet removed it under us): refused too.
    volume.swap('..2026_12_04_23_59_59.000000000', ['bindings.yaml']);
    await refused(daemon, /no such file|vanished|ENOENT/);
    expect(await ask(daemon)).toBe('allow:');
    expect(await daemon.admin.metrics()).toMatch(/^capgate_policy_directory_error 1$/m);
    expect(await daemon.admin.metrics()).toMatch(
      /^capgate_policy_directory_reconciles_total\{result="refused"\} (\d+)$/m,
    );
    expect(
      daemon.logs.filter(
        (l) =>
          l.msg ===
          'policy directory: update REFUSED, the last good policies and bindings stay in force until the directory is fixed',
      ).length,
    ).toBeGreaterThanOrEqual(bad.length);
    // Fixed: applied, and health is ok again.
    const fixed = volume.publish(generation('memlock-cap'));
    expect((await applied(daemon, fixed)).status).toBe('ok');
    expect(await daemon.admin.metrics()).toMatch(/^capgate_policy_directory_error 0$/m);
  });

  it('refuses files and links that another user could have placed', async () => {
    const g = volume.publish(generation('vfio-only'));
    fs.chownSync(path.join(volume.root, g, 'vfio-only.wasm'), 65534, 65534);
    // The chown is an attribute change inside the generation, which is watched too.
    await refused(daemon, /vfio-only\.wasm .* is owned by uid 65534/);
    const w = volume.publish(generation('vfio-only'));
    fs.chmodSync(path.join(volume.root, w, 'bindings.yaml'), 0o666);
    await refused(daemon, /bindings\.yaml is writable by group and others/);
    // The volume root writable by others and not sticky: anyone could swap ..data.
    volume.publish(generation('vfio-only'));
    fs.chmodSync(volume.root, 0o777);
    await refused(daemon, /is writable by group and others \(mode 0777\)/);
    fs.chmodSync(volume.root, 0o1777);
    // ..data owned by another user (they could point it anywhere), or pointing out of the volume.
    volume.publish(generation('vfio-only'));
    fs.lchownSync(path.join(volume.root, '..data'), 65534, 65534);
    await refused(daemon, /\.\.data is owned by uid 65534/);
    const elsewhere = path.join(dir, 'elsewhere');
    fs.mkdirSync(elsewhere, { mode: 0o755 });
    volume.swap(`../elsewhere`, []);
    await refused(daemon, /\.\.data points to "\.\.\/elsewhere", not to a sibling/);
    const ok = volume.publish(generation('memlock-cap'));
    await applied(daemon, ok);
    expect((await daemon.admin.getBinding('set-memlock')).binding?.policy).toBe('memlock-cap');
  });

  it('takes the directory as the only source of truth across a restart on an empty state directory', async () => {
    expect(await daemon.stop()).toEqual({ code: 0, signal: null });
    // While it is down, a new generation is shipped, and the state directory is lost.
    const shipped = volume.publish(generation('vfio-only'));
    fs.rmSync(path.join(dir, 'state'), { recursive: true, force: true });
    daemon = await start(config());
    const h = await daemon.admin.health();
    expect(h.detail?.policyDirectory?.appliedFrom).toBe(path.join(volume.root, shipped));
    expect(h.detail?.bindings).toEqual([
      expect.objectContaining({ policy: 'vfio-only', source: 'directory', keyId: key.keyId }),
    ]);
    await daemon.admin.registerVm(vmFor(agent.pid, 'vm-dir', [['memory-bytes', String(64n * MiB)]]));
    expect(await ask(daemon)).toBe('deny:vm-not-vfio');
  });

  it("bindings: {} unbinds what the directory bound; an operation it does not bind stays the admin socket's", async () => {
    const empty = volume.publish(generation('memlock-cap', { 'bindings.yaml': 'bindings: {}\n' }));
    await applied(daemon, empty);
    expect((await daemon.admin.getBinding('set-memlock')).binding).toBeNull();
    expect(await ask(daemon)).toBe('deny:no-policy');
    const bound = await daemon.admin.bind('set-memlock', { policy: 'memlock-cap' });
    expect(bound.binding?.source).toBe('admin');
    // The directory binding the operation again takes it over.
    const again = volume.publish(generation('memlock-cap'));
    await applied(daemon, again);
    expect((await daemon.admin.getBinding('set-memlock')).binding?.source).toBe('directory');
  });

  it("with the directory switched off, its bindings are the admin socket's to change", async () => {
    expect(await daemon.stop()).toEqual({ code: 0, signal: null });
    const c = config();
    delete c.policies!.directory;
    daemon = await start(c);
    expect((await daemon.admin.getBinding('set-memlock')).binding).toMatchObject({
      policy: 'memlock-cap',
      source: 'directory',
    });
    expect((await daemon.admin.bind('set-memlock', { policy: 'vfio-only' })).binding?.source).toBe('admin');
    await daemon.stop();
  });
});

describe('a plain directory, without the kubelet', () => {
  it('is read directly, and a file changed in place is picked up', async () => {
    const plain = path.join(dir, 'plain');
    fs.mkdirSync(plain, { mode: 0o755 });
    for (const [k, v] of Object.entries(generation('memlock-cap')))
      fs.writeFileSync(path.join(plain, k), v, { mode: 0o644 });
    const d = await start(
      daemonConfig(tempDir('capgate-plain-'), {
        policies: {
          trustRoots: [{ name: 'fleet-ci', publicKey: key.publicKey }],
          requireSignatures: true,
          directory: plain,
          directoryPollS: 1,
        },
      }),
    );
    expect((await d.admin.health()).detail?.policyDirectory?.appliedFrom).toBe(plain);
    // Rewritten in place (no ..data): the directory itself is watched, and re-read every second besides.
    fs.writeFileSync(path.join(plain, 'bindings.yaml'), bindingsYaml('vfio-only', signed['vfio-only'].sha));
    await waitFor(
      async () => ((await d.admin.getBinding('set-memlock')).binding?.policy === 'vfio-only' ? true : undefined),
      'the plain directory change',
      2000,
    );
    await d.stop();
  });
});

describe('a compile that fails because the compile launcher died', () => {
  it('refuses the update for now, reads the same generation again after its Retry-After, and applies it', async () => {
    const retried = new KubeletVolume(path.join(dir, 'policies-retried'));
    retried.publish(generation('memlock-cap'));
    const d = await start(
      daemonConfig(tempDir('capgate-policydir-retried-'), {
        policies: {
          trustRoots: [{ name: 'fleet-ci', publicKey: key.publicKey }],
          requireSignatures: true,
          directory: retried.root,
          directoryPollS: 3600, // never the fallback: what reads it again is the Retry-After
        },
      }),
    );
    // A policy no daemon has stored: the update compiles it, in a compile process started for it.
    const file = path.join(dir, 'fresh.wasm');
    fs.writeFileSync(file, await componentFromWat(policyWat({ extra: '(global $fresh i32 (i32.const 7))' })));
    await waitUntil(
      () => below(d.pid, 'compile-main').length === 0,
      'the compile process to exit after its idle second',
    );
    const next = retried.publish(
      generation('memlock-cap', { 'fresh.wasm': fs.readFileSync(file), 'fresh.wasm.minisig': sign(key, file) }),
    );
    const compile = await waitForProbe(() => below(d.pid, 'compile-main')[0], "the update's compile process");
    process.kill(readProc(compile)!.ppid, 'SIGKILL');
    const h = await waitForProbe(async () => {
      const health = await d.admin.health();
      const status = health.detail?.policyDirectory;
      return status?.appliedFrom === path.join(retried.root, next) && status.error === null ? health : undefined;
    }, 'the same generation to be applied after the Retry-After');
    expect(h.status).toBe('ok');
    // It was refused first, as not the directory's fault.
    expect(
      d.logs.some(
        (l) =>
          String(l.msg).startsWith('policy directory: update REFUSED') &&
          /compile launcher died/.test(String(l.problem)),
      ),
    ).toBe(true);
    expect((await d.admin.listPolicies()).policies.map((p) => p.name)).toContain('fresh');
    await d.stop();
  });
});

describe('a policy whose bytes kill the compile process', () => {
  it('is read again after the first death (503), refused after the second (422), and then not read again', async () => {
    const crashing = new KubeletVolume(path.join(dir, 'policies-crashing'));
    const good = crashing.publish(generation('memlock-cap'));
    const d = await start(
      daemonConfig(tempDir('capgate-policydir-crashing-'), {
        policies: {
          trustRoots: [{ name: 'fleet-ci', publicKey: key.publicKey }],
          requireSignatures: true,
          directory: crashing.root,
          directoryPollS: 3600, // never the fallback: only the Retry-After reads it again
        },
      }),
    );
    try {
      const file = path.join(dir, 'crasher.wasm');
      const crasher = await slowPolicy(7);
      fs.writeFileSync(file, crasher);
      await noCompileProcess(d.pid);
      const firstDeath = killMidCompile(d.pid, crasher);
      crashing.publish(generation('memlock-cap', { 'crasher.wasm': crasher, 'crasher.wasm.minisig': sign(key, file) }));
      await firstDeath;
      // Read again after the Retry-After (the compile process that died is gone: the retry's is a
      // fresh one), and killed again.
      await killMidCompile(d.pid, crasher);
      const h = await waitForProbe(async () => {
        const health = await d.admin.health();
        return /crasher\.wasm: the compile process died twice while compiling these bytes/.test(
          health.detail?.policyDirectory?.error?.message ?? '',
        )
          ? health
          : undefined;
      }, "the generation refused for the policy's bytes");
      expect(h.status).toBe('degraded');
      expect(h.detail?.policyDirectory?.appliedFrom).toBe(path.join(crashing.root, good));
      const refusals = (): string[] =>
        d.logs
          .filter((l) => String(l.msg).startsWith('policy directory: update REFUSED'))
          .map((l) => String(l.problem));
      // Health and the log are two channels: the log line may reach this side after the probe's answer.
      await waitUntil(() => refusals().length >= 2, 'the second refusal in the log');
      expect(refusals()).toEqual([
        expect.stringMatching(
          /^crasher\.wasm: .*the compile process died while compiling the policy \(SIGKILL\).*try again/,
        ),
        expect.stringMatching(
          /^crasher\.wasm: the compile process died twice while compiling these bytes .*\(SIGKILL\)/,
        ),
      ]);
      // Not read again: a re-read would come a Retry-After (1 s) after the refusal, and compile
      // the bytes, unkilled now, in whatever compile process runs. A push after the refusal
      // keeps one running until a second after its answer, so later than such a re-read: once
      // it has exited, the generation would have been read (and applied) if it were.
      const other = path.join(dir, 'after-crash.wasm');
      fs.writeFileSync(other, await componentFromWat(policyWat({ extra: '(global $after i32 (i32.const 8))' })));
      await d.admin.pushPolicy('after-crash', fs.readFileSync(other), { signature: sign(key, other) });
      await noCompileProcess(d.pid);
      expect(refusals()).toHaveLength(2);
      const after = await d.admin.health();
      expect(after.detail?.policyDirectory?.appliedFrom).toBe(path.join(crashing.root, good));
      expect(after.detail?.policyDirectory?.error?.message).toBe(h.detail?.policyDirectory?.error?.message);
      expect((await d.admin.listPolicies()).policies.map((p) => p.name)).not.toContain('crasher');
    } finally {
      await d.stop();
    }
  }, 240_000);
});
