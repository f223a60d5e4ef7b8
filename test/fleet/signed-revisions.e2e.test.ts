// Signed revisions against a real daemon process: signatures made by the real minisign tool are
// accepted (prehashed and legacy), and every way a revision can fail to trace back to a trusted
// key is refused at push with its own reason; a bound revision whose key leaves the trust roots
// is suspended at the next start: denied signature-untrusted, health degraded, the log loud.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonConfigInput } from '../../runtime/daemon/config.ts';
import {
  daemonConfig,
  DAEMON_MAIN,
  REPO_ROOT,
  spawnDaemon,
  type DaemonProcess,
} from '../daemon/helpers/daemon-process.ts';
import { asPolicy, MiB, vmFor } from '../daemon/helpers/fixtures.ts';
import { removeTempDirs, tempDir } from '../daemon/helpers/temp-dir.ts';
import { VmAgent } from '../daemon/helpers/vm-agent-handle.ts';
import { makeKey, minisignAccepts, sign, type MinisignKey } from '../support/minisign.ts';

let dir: string;
let release: MinisignKey;
let stranger: MinisignKey;
let wasmFile: string;
let agent: VmAgent;
let target: number;
const running: DaemonProcess[] = [];

beforeAll(async () => {
  dir = tempDir('capgate-signed-');
  release = makeKey(dir, 'release');
  stranger = makeKey(dir, 'stranger');
  wasmFile = path.join(dir, 'memlock-cap.wasm');
  fs.writeFileSync(wasmFile, asPolicy('memlock-cap'));
  agent = await VmAgent.start();
  target = await agent.spawnTarget();
});

afterAll(async () => {
  await agent?.stop();
  for (const d of running) if (d.child.exitCode === null) await d.stop();
  removeTempDirs();
});

function config(extra: DaemonConfigInput['policies'] = {}): DaemonConfigInput {
  return daemonConfig(dir, {
    policies: {
      trustRoots: [{ name: 'release-team', publicKey: release.publicKey }],
      requireSignatures: true,
      ...extra,
    },
  });
}

async function start(c: DaemonConfigInput): Promise<DaemonProcess> {
  const d = await spawnDaemon(c, { scope: 'file' }); // later tests of the file use it
  running.push(d);
  return d;
}

const ask = (d: DaemonProcess): Promise<{ reason: string; id: string }> =>
  agent.requestOnce(d.requestSocket, target, 4n * MiB);

const tampered = (): Uint8Array => {
  const bytes = new Uint8Array(asPolicy('memlock-cap'));
  // A byte in the custom "name" section's tail: still a valid component, so only the signature can tell.
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01;
  return bytes;
};

describe('signed revisions, with policies.requireSignatures', () => {
  let daemon: DaemonProcess;

  it('accepts a revision signed by minisign (prehashed, its default) and shows the signer; the audit names the key', async () => {
    daemon = await start(config());
    const sig = sign(release, wasmFile, { trustedComment: 'memlock-cap 1.0 reviewed by alice' });
    const pushed = await daemon.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'), { signature: sig });
    expect(pushed.revision.signature).toEqual({
      keyId: release.keyId,
      signer: 'release-team',
      trustedComment: 'memlock-cap 1.0 reviewed by alice',
    });
    const info = await daemon.admin.getRevision('memlock-cap', pushed.revision.revision);
    expect(info).toMatchObject({ trustedNow: true, signatureFile: sig });
    const bound = await daemon.admin.bind('set-memlock', { policy: 'memlock-cap' });
    expect(bound.binding).toMatchObject({ keyId: release.keyId, source: 'admin' });
    await daemon.admin.registerVm(vmFor(agent.pid, 'vm-signed', [['memory-bytes', String(64n * MiB)]]));
    const { reason, id } = await ask(daemon);
    expect(reason).toBe('allow:');
    const { record } = await daemon.admin.getAuditRecord(id);
    expect(record.policy).toEqual({
      name: 'memlock-cap',
      revision: pushed.revision.revision,
      sha256: pushed.revision.sha256,
      keyId: release.keyId,
    });
  });

  it('accepts the legacy format (Ed25519 over the bytes themselves) too', async () => {
    const legacyFile = path.join(dir, 'legacy.minisig');
    const sig = sign(release, wasmFile, { legacy: true, out: legacyFile });
    expect(sig.split('\n')[1]!.startsWith('RW')).toBe(true); // "Ed", not "ED"
    const pushed = await daemon.admin.pushPolicy('memlock-legacy', asPolicy('memlock-cap'), { signature: sig });
    expect(pushed.revision.signature?.keyId).toBe(release.keyId);
  });

  it('refuses tampered bytes: signature-invalid (and minisign agrees)', async () => {
    const bad = path.join(dir, 'tampered.wasm');
    fs.writeFileSync(bad, tampered());
    expect(minisignAccepts(release, bad, `${wasmFile}.minisig`)).toBe(false);
    await expect(
      daemon.admin.pushPolicy('memlock-cap', tampered(), { signature: fs.readFileSync(`${wasmFile}.minisig`, 'utf8') }),
    ).rejects.toMatchObject({
      status: 422,
      code: 'invalid-policy',
      kind: 'signature-invalid',
      message: expect.stringContaining('does not match these bytes'),
    });
  });

  it('refuses a changed trusted comment: signature-invalid', async () => {
    const sig = fs.readFileSync(`${wasmFile}.minisig`, 'utf8').replace('reviewed by alice', 'reviewed by mallory');
    await expect(
      daemon.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'), { signature: sig }),
    ).rejects.toMatchObject({ kind: 'signature-invalid', message: expect.stringContaining('trusted comment') });
  });

  it('refuses a signature by a key that is not a trust root: signature-untrusted, naming both keys', async () => {
    const sig = sign(stranger, wasmFile, { out: path.join(dir, 'stranger.minisig') });
    await expect(
      daemon.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'), { signature: sig }),
    ).rejects.toMatchObject({
      status: 422,
      kind: 'signature-untrusted',
      message: expect.stringMatching(new RegExp(`${stranger.keyId}.*release-team \\(${release.keyId}\\)`)),
    });
  });

  it('refuses a revision without a signature: signature-missing, with the command that fixes it', async () => {
    await expect(daemon.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'))).rejects.toMatchObject({
      status: 422,
      kind: 'signature-missing',
      hint: expect.stringContaining('minisign -S'),
    });
  });

  it('refuses a signature file that is not one, saying what is wrong', async () => {
    const cases: Array<[string, RegExp]> = [
      ['hello', /4 lines/],
      [fs.readFileSync(release.publicKeyFile, 'utf8'), /4 lines/],
      ['untrusted comment: x\nnot base64!\ntrusted comment: y\nAAAA\n', /not base64/],
      ['untrusted comment: x\nRWQ=\ntrusted comment: y\nAAAA\n', /decodes to/],
    ];
    for (const [sig, message] of cases) {
      await expect(
        daemon.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'), { signature: sig }),
        sig,
      ).rejects.toMatchObject({ status: 422, kind: 'signature-invalid', message: expect.stringMatching(message) });
    }
    await expect(
      daemon.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'), { signature: 'x'.repeat(5000) }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringContaining('longer than 4096') });
    // Nothing was stored by any refused push: still the two signed revisions.
    const { policies } = await daemon.admin.listPolicies();
    expect(policies.flatMap((p) => p.revisions).map((r) => [r.policy, r.signature?.keyId])).toEqual([
      ['memlock-cap', release.keyId],
      ['memlock-legacy', release.keyId],
    ]);
  });

  it('suspends a bound revision whose key was removed from the trust roots: denied signature-untrusted, health degraded, a loud log', async () => {
    expect(await daemon.stop()).toEqual({ code: 0, signal: null });
    const other = makeKey(dir, 'other');
    const revoked = await start(config({ trustRoots: [{ name: 'other-team', publicKey: other.publicKey }] }));
    const health = await revoked.admin.health();
    expect(health.status).toBe('degraded');
    expect(health.detail?.problems).toEqual([
      expect.objectContaining({
        kind: 'binding-suspended',
        operation: 'set-memlock',
        policy: 'memlock-cap',
        reason: 'signature-untrusted',
        message: expect.stringContaining(release.keyId),
      }),
    ]);
    const warning = revoked.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('SUSPENDED'));
    expect(warning).toMatchObject({ level: 50, reason: 'signature-untrusted' });
    // Not compiled: code nobody trusts is not even loaded.
    expect(health.detail?.policiesLoaded).toBe(0);
    const { reason, id } = await ask(revoked);
    expect(reason).toBe('deny:signature-untrusted');
    const { record } = await revoked.admin.getAuditRecord(id);
    expect(record).toMatchObject({
      decision: 'deny',
      errorKind: 'signature-untrusted',
      policy: { name: 'memlock-cap', keyId: release.keyId },
    });
    expect(record.errorDetail).toContain(release.keyId);
    expect(await revoked.admin.metrics()).toMatch(/^capgate_bindings_suspended 1$/m);
    // Rebinding it is refused too; inspect says the signer is no longer trusted.
    await expect(revoked.admin.bind('set-memlock', { policy: 'memlock-cap', revision: 1 })).rejects.toMatchObject({
      status: 422,
      kind: 'signature-untrusted',
    });
    expect(await revoked.admin.getRevision('memlock-cap', 1)).toMatchObject({
      trustedNow: false,
      signature: { signer: 'release-team' },
    });
    expect(await revoked.stop()).toEqual({ code: 0, signal: null });
  });

  it('with the key trusted again, the same binding runs again', async () => {
    const restored = await start(config());
    expect((await restored.admin.health()).status).toBe('ok');
    expect((await ask(restored)).reason).toBe('allow:');
    await restored.stop();
  });

  it('an unsigned revision pushed before signatures were required is suspended signature-missing once they are', async () => {
    const d = await start(
      daemonConfig(dir, { policies: { trustRoots: [{ name: 'release-team', publicKey: release.publicKey }] } }),
    );
    await d.admin.pushPolicy('unsigned', asPolicy('memlock-cap'));
    await d.admin.bind('set-memlock', { policy: 'unsigned' });
    expect((await ask(d)).reason).toBe('allow:');
    await d.stop();
    const strict = await start(config());
    expect((await ask(strict)).reason).toBe('deny:signature-missing');
    expect((await strict.admin.health()).detail?.problems).toEqual([
      expect.objectContaining({ kind: 'binding-suspended', reason: 'signature-missing' }),
    ]);
    // Rolling back to the signed revision is allowed: it runs again.
    await strict.admin.rollback('set-memlock');
    expect((await ask(strict)).reason).toBe('allow:');
    await strict.stop();
  });
});

describe('trust roots in the config', () => {
  it('a key string that is not a minisign public key stops the start with the entry named and the fix', () => {
    const c = daemonConfig(tempDir('capgate-badkey-'), {
      policies: { trustRoots: [{ name: 'ops', publicKey: 'RWQnot-a-key' }] },
    });
    const r = spawnSync(process.execPath, [DAEMON_MAIN, '--json', JSON.stringify(c)], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /policies\.trustRoots\[0\] \(ops\): the public key is not base64.*Fix: copy the second line/,
    );
  });

  it('a signature pushed to a daemon without trust roots is refused, never stored unverified', async () => {
    const d = await start(daemonConfig(tempDir('capgate-noroots-')));
    const sig = sign(release, wasmFile, { out: path.join(dir, 'noroots.minisig') });
    await expect(d.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'), { signature: sig })).rejects.toMatchObject({
      kind: 'signature-untrusted',
      message: expect.stringContaining("not among the daemon's trust roots (none)"),
    });
    // Unsigned pushes work as before when signatures are not required.
    expect((await d.admin.pushPolicy('memlock-cap', asPolicy('memlock-cap'))).revision.signature).toBeNull();
    await d.stop();
  });
});
