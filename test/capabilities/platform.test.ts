// koffi is loaded lazily (the simulator imports this code on laptops), and a platform without
// the syscalls gets a clear refusal from assertLinuxSupport.
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { runChild } from '../support/processes/children.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs an ESM snippet in a fresh node (with tsx) and returns its stdout as JSON. */
async function runFresh(body: string): Promise<unknown> {
  const script = `
    const { createRequire } = await import('node:module');
    const koffiLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/koffi/'));
    const linux = await import('./runtime/capabilities/linux/index.ts');
    const os = await import('./runtime/os/support.ts');
    const out = {};
    ${body}
    console.log(JSON.stringify(out));`;
  const r = await runChild(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root });
  if (r.code !== 0) throw new Error(`the snippet exited ${r.code}:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe('loading', () => {
  it('does not load koffi until a capability is used', async () => {
    const out = await runFresh(`
      const scope = { identity: { uuid: 'u', name: 'n', id: 1, labels: [] }, anchor: { rootPid: 1, rootStartTime: 1 } };
      const caps = linux.createLinuxCapabilities(scope);
      out.afterImport = koffiLoaded();
      caps.queryVmIdentity(process.pid);
      out.afterUse = koffiLoaded();`);
    expect(out).toEqual({ afterImport: false, afterUse: true });
  });

  it('refuses to start on a platform without the syscalls, saying what to do', async () => {
    const out = await runFresh(`
      Object.defineProperty(process, 'platform', { value: 'darwin' });
      try { os.assertLinuxSupport(); out.threw = false; } catch (e) { out.name = e.name; out.message = e.message; }
      out.koffi = koffiLoaded();`);
    expect(out).toMatchObject({ name: 'LinuxSupportError', koffi: false });
    expect((out as { message: string }).message).toMatch(/need Linux.*this is darwin.*simulator/);
  });

  it('fails closed when capabilities are used there anyway: set-memlock internal, query-vm-identity throws its cause (the engine denies host-error and audits it)', async () => {
    const out = await runFresh(`
      Object.defineProperty(process, 'platform', { value: 'darwin' });
      const scope = { identity: { uuid: 'u', name: 'n', id: 1, labels: [] }, anchor: { rootPid: process.pid, rootStartTime: 1 } };
      const caps = linux.createLinuxCapabilities(scope);
      out.set = caps.setMemlock(process.pid, 1024n);
      try { out.identity = caps.queryVmIdentity(process.pid); } catch (e) { out.thrown = e.message; }`);
    expect(out).toMatchObject({
      set: { ok: false, error: 'internal', detail: expect.stringMatching(/need Linux/) },
      thrown: expect.stringMatching(/need Linux/),
    });
    expect(out).not.toHaveProperty('identity');
  });
});
