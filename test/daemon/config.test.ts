// Daemon configuration: defaults by uid, files, and errors that name the offending key.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkConfigShape,
  ConfigError,
  loadConfigFile,
  mergeConfig,
  resolveConfig,
  uploadBudgetShortfall,
} from '../../runtime/daemon/config.ts';
import { DEFAULT_LIMITS } from '../../runtime/engine/limits.ts';
import { engineOptions } from '../../runtime/config/engine-options.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';

afterAll(removeTempDirs);

describe('resolveConfig', () => {
  it('uses /run/capgate and /var/lib/capgate as root, ./.capgate otherwise', () => {
    const root = resolveConfig({}, { uid: 0, cwd: '/srv', cores: 2 });
    expect(root).toMatchObject({
      adminSocket: '/run/capgate/admin.sock',
      requestSocket: '/run/capgate/request.sock',
      database: '/var/lib/capgate/capgate.db',
    });
    expect(root.admin).toEqual({
      socketMode: 0o600,
      allowUids: [0],
      allowGids: [],
      uploadBytesPerSecond: 1024 * 1024,
      uploadBurstBytes: 512 * 1024,
    });
    const user = resolveConfig({}, { uid: 1000, cwd: '/home/u/proj', cores: 2 });
    expect(user.adminSocket).toBe('/home/u/proj/.capgate/run/admin.sock');
    expect(user.database).toBe('/home/u/proj/.capgate/state/capgate.db');
    expect(user.admin.allowUids).toEqual([0, 1000]);
  });

  it('keeps one worker free of any single VM by default', () => {
    const c = resolveConfig({ engine: { workers: 4 } }, { uid: 0, cwd: '/', cores: 8 });
    expect(c.scheduler).toMatchObject({ globalConcurrency: 4, perKeyInFlight: 3 });
  });

  it("caches a connection's requester VM for 1 s by default; 0 turns the cache off; negatives are refused", () => {
    const env = { uid: 0, cwd: '/', cores: 2 };
    expect(resolveConfig({}, env).request.identityCacheMs).toBe(1000);
    expect(resolveConfig({ request: { identityCacheMs: 0 } }, env).request.identityCacheMs).toBe(0);
    expect(() => resolveConfig({ request: { identityCacheMs: -1 } }, env)).toThrow(
      /request\.identityCacheMs: must be an integer from 0 to 3600000, got -1/,
    );
    expect(resolveConfig({}, env).engine.inlineFuel).toBe(100_000);
    expect(resolveConfig({ engine: { inlineFuel: 0 } }, env).engine.inlineFuel).toBe(0);
    expect(() => resolveConfig({ engine: { inlineFuel: 1.5 } }, env)).toThrow(
      /engine\.inlineFuel: must be an integer from 0 to \d+, got 1\.5/,
    );
    expect(resolveConfig({}, env).engine.inlineBudgetMs).toBe(2);
    expect(resolveConfig({ engine: { inlineBudgetMs: 0.5 } }, env).engine.inlineBudgetMs).toBe(0.5);
    expect(() => resolveConfig({ engine: { inlineBudgetMs: 0 } }, env)).toThrow(
      /engine\.inlineBudgetMs: must be a number of milliseconds in \(0, 1000\]/,
    );
    expect(() => resolveConfig({ engine: { inlineBudgetMs: 1001 } }, env)).toThrow(
      /engine\.inlineBudgetMs: must be a number of milliseconds in \(0, 1000\]/,
    );
    // The compile process's sandbox is not optional unless a config says so, and the engine is told.
    expect(resolveConfig({}, env).engine.allowUnsandboxedCompile).toBe(false);
    expect(engineOptions(resolveConfig({}, env).engine).compileProcess).toEqual({ allowUnsandboxed: false });
    expect(
      engineOptions(resolveConfig({ engine: { allowUnsandboxedCompile: true } }, env).engine).compileProcess,
    ).toEqual({ allowUnsandboxed: true });
    expect(() => resolveConfig({ engine: { allowUnsandboxedCompile: 'yes' } } as never, env)).toThrow(
      /engine\.allowUnsandboxedCompile/,
    );
    expect(resolveConfig({}, env).metrics.eventLoopResolutionMs).toBe(5);
    expect(() => resolveConfig({ metrics: { eventLoopResolutionMs: 0 } }, env)).toThrow(
      /metrics\.eventLoopResolutionMs: must be an integer from 1 to 60000, got 0/,
    );
  });

  it('budgets request-socket connections: 64 per VM, 8 per uid and 32 in all outside VMs, the rest of 1024 reserved for VMs', () => {
    const env = { uid: 0, cwd: '/', cores: 2 };
    const c = resolveConfig({}, env);
    expect(c.request).toMatchObject({ connectionsPerVm: 64, connectionsPerUid: 8, connectionsOutsideVms: 32 });
    expect(c.http.maxConnections).toBe(1024);
    expect(() => resolveConfig({ http: { maxConnections: 32 } }, env)).toThrow(
      /request.connectionsOutsideVms \(32\) must be below http.maxConnections \(32\): the rest is reserved for VMs/,
    );
    expect(() => resolveConfig({ request: { connectionsPerUid: 40 } }, env)).toThrow(
      /connectionsPerUid \(40\) must not exceed request.connectionsOutsideVms/,
    );
    expect(() => resolveConfig({ request: { connectionsPerVm: 2000 } }, env)).toThrow(
      /connectionsPerVm \(2000\) must not exceed http.maxConnections/,
    );
    expect(() => resolveConfig({ request: { connectionsPerVm: 0 } }, env)).toThrow(
      /request\.connectionsPerVm: must be an integer from 1 to 1000000, got 0/,
    );
  });

  it('says when the largest policy could not arrive within the request timeout under the upload budget', () => {
    const env = { uid: 0, cwd: '/', cores: 2 };
    expect(uploadBudgetShortfall(resolveConfig({}, env))).toBeUndefined();
    // 4 MiB (the default largest upload), 512 KiB at once, the rest at 64 KiB/s: 56 s, past 30 s.
    expect(uploadBudgetShortfall(resolveConfig({ admin: { uploadBytesPerSecond: 64 * 1024 } }, env))).toMatch(
      /admin.uploadBytesPerSecond \(65536\) reads a policy of http.maxPolicyBytes \(4194304\) in 56000 ms, past http.requestTimeoutMs \(30000\)/,
    );
    expect(
      resolveConfig({ admin: { uploadBytesPerSecond: 64 * 1024, uploadBurstBytes: 4 << 20 } }, env).admin,
    ).toMatchObject({
      uploadBytesPerSecond: 64 * 1024,
    });
  });

  it('names unknown keys and wrong types', () => {
    const env = { uid: 0, cwd: '/', cores: 2 };
    expect(() => resolveConfig({ adminSokcet: 'x' } as never, env)).toThrow(
      'configuration: adminSokcet: unknown key; did you mean adminSocket?',
    );
    expect(() => resolveConfig({ scheduler: { perVm: 1 } } as never, env)).toThrow(/scheduler.perVm/);
    expect(() => resolveConfig({ audit: { durability: 'sometimes' } } as never, env)).toThrow(ConfigError);
    expect(() => resolveConfig({ request: { socketGroup: 'no-such-group-xyz' } }, env)).toThrow(/no group named/);
    expect(() => resolveConfig({ scheduler: { globalConcurrency: 0 } }, env)).toThrow(
      /scheduler\.globalConcurrency: must be an integer from 1 to 1024, got 0/,
    );
  });
});

describe('engine.limits', () => {
  const env = { uid: 0, cwd: '/', cores: 2 };

  it('resolves every limit: the defaults, with the keys a file sets on top', () => {
    expect(resolveConfig({}, env).engine.limits).toEqual(DEFAULT_LIMITS);
    expect(resolveConfig({ engine: { limits: { deadlineMs: 250 } } }, env).engine.limits).toEqual({
      ...DEFAULT_LIMITS,
      deadlineMs: 250,
    });
    // Fuel may be as large as a safe integer (a test of deadlines sets it out of reach).
    expect(resolveConfig({ engine: { limits: { fuel: 1e15 } } }, env).engine.limits.fuel).toBe(1e15);
  });

  it('refuses a deadline of 0 (every decision would deny), and every other limit out of range', () => {
    expect(() => resolveConfig({ engine: { limits: { deadlineMs: 0 } } }, env)).toThrow(
      'configuration: engine.limits.deadlineMs: must be an integer from 1 to 300000, got 0',
    );
    expect(() => resolveConfig({ engine: { limits: { memoryPages: 70_000 } } }, env)).toThrow(
      /engine\.limits\.memoryPages: must be an integer from 1 to 65536/,
    );
    expect(() => resolveConfig({ engine: { limits: { fuel: -5 } } }, env)).toThrow(
      /engine\.limits\.fuel: must be an integer from 1/,
    );
    expect(() => resolveConfig({ engine: { limits: { maxLogLines: 'many' } } } as never, env)).toThrow(
      /engine\.limits\.maxLogLines: must be an integer from 0 to 10000, got "many"/,
    );
  });

  it('names a misspelt limit and the key it probably meant', () => {
    expect(() => resolveConfig({ engine: { limits: { deadlinMs: 50 } } } as never, env)).toThrow(
      'configuration: engine.limits.deadlinMs: unknown key; did you mean deadlineMs?',
    );
    expect(() => checkConfigShape({ engine: { limits: { bogus: 1 } } }, 'x.yaml')).toThrow(
      /^x\.yaml: engine\.limits\.bogus: unknown key \(known: fuel, memoryPages, deadlineMs/,
    );
  });
});

describe('mergeConfig (--config-json over the file)', () => {
  it("sets single keys of a section and keeps the file's other keys, at every level", () => {
    const file = {
      runDir: '/r',
      request: { socketGroup: 0, deadlineMs: 900 },
      engine: { workers: 2, limits: { fuel: 5, deadlineMs: 50 } },
      admin: { allowUids: [0, 5] },
    };
    const merged = mergeConfig(file, {
      request: { deadlineMs: 500 },
      engine: { limits: { deadlineMs: 70 } },
      admin: { allowUids: [7] },
    });
    expect(merged).toEqual({
      runDir: '/r',
      request: { socketGroup: 0, deadlineMs: 500 },
      engine: { workers: 2, limits: { fuel: 5, deadlineMs: 70 } },
      admin: { allowUids: [7] },
    });
    // The inputs are left as they were.
    expect(file.request.deadlineMs).toBe(900);
  });

  it('refuses a __proto__ key before any merge, and the merge never touches a prototype', () => {
    const hostile = JSON.parse(
      '{"__proto__": {"polluted": true}, "request": {"__proto__": {"deadlineMs": 1}}}',
    ) as unknown;
    expect(() => checkConfigShape(hostile, '--config-json')).toThrow(/--config-json: __proto__: unknown key/);
    const merged = mergeConfig({ request: { deadlineMs: 900 } }, hostile as never);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(merged.request).toEqual({ deadlineMs: 900 });
    expect(Object.getPrototypeOf(merged.request)).toBe(Object.prototype);
  });
});

describe('loadConfigFile', () => {
  it('names the file, the path and the nearest key of a typo in YAML', () => {
    const file = path.join(tempDir(), 'capgate.yaml');
    fs.writeFileSync(file, 'request:\n  deadlinMs: 10\n');
    expect(() => loadConfigFile(file)).toThrow(`${file}: request.deadlinMs: unknown key; did you mean deadlineMs?`);
  });

  it('reads YAML and resolves paths relative to the file', () => {
    const dir = tempDir();
    const file = path.join(dir, 'capgate.yaml');
    fs.writeFileSync(
      file,
      'runDir: run\nstateDir: /var/tmp/x\naudit:\n  durability: full\n  retentionDays: 30\nrequest:\n  socketGroup: 0\n',
    );
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
