// Daemon configuration: defaults by uid, files, and errors that name the offending key.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, resolveConfig } from '../../runtime/daemon/config.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';

afterAll(removeTempDirs);

describe('resolveConfig', () => {
  it('uses /run/capgate and /var/lib/capgate as root, ./.capgate otherwise', () => {
    const root = resolveConfig({}, { uid: 0, cwd: '/srv', cores: 2 });
    expect(root).toMatchObject({ adminSocket: '/run/capgate/admin.sock', requestSocket: '/run/capgate/request.sock', database: '/var/lib/capgate/capgate.db' });
    expect(root.admin).toEqual({ socketMode: 0o600, allowUids: [0], allowGids: [] });
    const user = resolveConfig({}, { uid: 1000, cwd: '/home/u/proj', cores: 2 });
    expect(user.adminSocket).toBe('/home/u/proj/.capgate/run/admin.sock');
    expect(user.database).toBe('/home/u/proj/.capgate/state/capgate.db');
    expect(user.admin.allowUids).toEqual([0, 1000]);
  });

  it('keeps one worker free of any single VM by default', () => {
    const c = resolveConfig({ engine: { workers: 4 } }, { uid: 0, cwd: '/', cores: 8 });
    expect(c.scheduler).toMatchObject({ globalConcurrency: 4, perKeyInFlight: 3 });
  });

  it('caches a connection\'s requester VM for 1 s by default; 0 turns the cache off; negatives are refused', () => {
    const env = { uid: 0, cwd: '/', cores: 2 };
    expect(resolveConfig({}, env).request.identityCacheMs).toBe(1000);
    expect(resolveConfig({ request: { identityCacheMs: 0 } }, env).request.identityCacheMs).toBe(0);
    expect(() => resolveConfig({ request: { identityCacheMs: -1 } }, env)).toThrow(/request.identityCacheMs must be a non-negative/);
    expect(resolveConfig({}, env).engine.inlineFuel).toBe(100_000);
    expect(resolveConfig({ engine: { inlineFuel: 0 } }, env).engine.inlineFuel).toBe(0);
    expect(() => resolveConfig({ engine: { inlineFuel: 1.5 } }, env)).toThrow(/engine.inlineFuel must be a non-negative integer/);
    expect(resolveConfig({}, env).engine.inlineBudgetMs).toBe(2);
    expect(resolveConfig({ engine: { inlineBudgetMs: 0.5 } }, env).engine.inlineBudgetMs).toBe(0.5);
    expect(() => resolveConfig({ engine: { inlineBudgetMs: 0 } }, env)).toThrow(/engine.inlineBudgetMs must be a number of milliseconds in \(0, 1000\]/);
  });

  it('budgets request-socket connections: 64 per VM, 8 per uid and 32 in all outside VMs, the rest of 1024 reserved for VMs', () => {
    const env = { uid: 0, cwd: '/', cores: 2 };
    const c = resolveConfig({}, env);
    expect(c.request).toMatchObject({ connectionsPerVm: 64, connectionsPerUid: 8, connectionsOutsideVms: 32 });
    expect(c.http.maxConnections).toBe(1024);
    expect(() => resolveConfig({ http: { maxConnections: 32 } }, env)).toThrow(/request.connectionsOutsideVms \(32\) must be below http.maxConnections \(32\): the rest is reserved for VMs/);
    expect(() => resolveConfig({ request: { connectionsPerUid: 40 } }, env)).toThrow(/connectionsPerUid \(40\) must not exceed request.connectionsOutsideVms/);
    expect(() => resolveConfig({ request: { connectionsPerVm: 2000 } }, env)).toThrow(/connectionsPerVm \(2000\) must not exceed http.maxConnections/);
    expect(() => resolveConfig({ request: { connectionsPerVm: 0 } }, env)).toThrow(/request.connectionsPerVm must be a positive integer/);
  });

  it('names unknown keys and wrong types', () => {
    const env = { uid: 0, cwd: '/', cores: 2 };
    expect(() => resolveConfig({ adminSokcet: 'x' } as never, env)).toThrow(/unknown key "adminSokcet"/);
    expect(() => resolveConfig({ scheduler: { perVm: 1 } } as never, env)).toThrow(/scheduler.perVm/);
    expect(() => resolveConfig({ audit: { durability: 'sometimes' } } as never, env)).toThrow(ConfigError);
    expect(() => resolveConfig({ request: { socketGroup: 'no-such-group-xyz' } }, env)).toThrow(/no group named/);
    expect(() => resolveConfig({ scheduler: { globalConcurrency: 0 } }, env)).toThrow(/globalConcurrency must be a positive integer/);
  });
});

describe('loadConfigFile', () => {
  it('reads YAML and resolves paths relative to the file', () => {
    const dir = tempDir();
    const file = path.join(dir, 'capgate.yaml');
    fs.writeFileSync(file, 'runDir: run\nstateDir: /var/tmp/x\naudit:\n  durability: full\n  retentionDays: 30\nrequest:\n  socketGroup: 0\n');
    const input = loadConfigFile(file);
    const c = resolveConfig(input, { uid: 0, cwd: '/elsewhere', cores: 2 });
    expect(c.adminSocket).toBe(path.join(dir, 'run', 'admin.sock'));
    expect(c.database).toBe('/var/tmp/x/capgate.db');
    expect(c.audit).toMatchObject({ durability: 'full', retentionDays: 30 });
    expect(c.request).toMatchObject({ socketGroup: 0, socketMode: 0o660 });
  });

  it('says when the file is missing or not YAML', () => {
    expect(() => loadConfigFile('/nonexistent/capgate.yaml')).toThrow(/cannot read the config file/);
    const file = path.join(tempDir(), 'bad.yaml');
    fs.writeFileSync(file, 'a: [1, 2\n');
    expect(() => loadConfigFile(file)).toThrow(/not valid YAML/);
  });
});
