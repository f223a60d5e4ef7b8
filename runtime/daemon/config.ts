// Daemon configuration: defaults that serve a newcomer, a YAML/JSON config file, and
// validation that names the offending key and says what it should be.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import type { EngineLimits } from '../engine/limits.ts';
import { DEFAULT_INLINE_BUDGET_MS, DEFAULT_INLINE_FUEL } from '../engine/speculative/inline-runner.ts';
import type { Durability } from '../store/database.ts';
import type { HttpLimits } from '../server/http/unix-server.ts';
import type { SchedulerLimits } from '../server/scheduler/fair-scheduler.ts';
import { readTrustedFile, UntrustedPathError } from './path-trust.ts';
import { builtInDirs, defaultRunDir, socketFromEnvironment, type LocationEnvironment } from './socket-locations.ts';

export interface DaemonConfig {
  /** Sockets live here (default: $CAPGATE_RUN_DIR, else /run/capgate as root, ./.capgate/run otherwise). */
  runDir: string;
  /** The database lives here (default: /var/lib/capgate as root, ./.capgate/state otherwise). */
  stateDir: string;
  adminSocket: string;
  requestSocket: string;
  database: string;
  admin: {
    /** Default 0o600. */
    socketMode: number;
    /** Peer uids allowed on the admin socket; default [0, the daemon's uid]. */
    allowUids: number[];
    /** Peer gids allowed on the admin socket; default []. */
    allowGids: number[];
  };
  request: {
    /** Default 0o660 with socketGroup set, 0o666 otherwise. */
    socketMode: number;
    /** Group (gid or name) owning the request socket. */
    socketGroup?: number;
    /** Whole-request deadline, queueing included. Default 1000 ms. */
    deadlineMs: number;
    /** Retry-After of 503 overloaded answers. Default 1 s. */
    retryAfterS: number;
    /**
     * How long a connection's requester VM, resolved from /proc, is reused (also re-resolved on
     * any VM registry change). Bounds how long a process that left its VM keeps that identity on
     * an open connection. 0 resolves on every request. Default 1000 ms.
     */
    identityCacheMs: number;
    /**
     * Connections one registered VM may hold on the request socket (all its processes together).
     * Default 64. A full socket (http.maxConnections) closes the oldest idle connection of the
     * biggest holder to admit a VM's connection.
     */
    connectionsPerVm: number;
    /** Connections one uid in no registered VM may hold. Default 8. */
    connectionsPerUid: number;
    /**
     * Connections all peers in no registered VM may hold together (each closed after one answer);
     * the rest of http.maxConnections is reserved for VMs. Default 32.
     */
    connectionsOutsideVms: number;
  };
  engine: {
    /** Evaluation workers; default 2 (min with the cores). */
    workers: number;
    /** Fuel of the first, speculative run on the daemon's thread; 0: every run in a worker. */
    inlineFuel: number;
    /** Time the speculative runs of one turn of the event loop may hold the daemon's thread (ms). Default 2. */
    inlineBudgetMs: number;
    limits: Partial<EngineLimits>;
  };
  scheduler: SchedulerLimits;
  http: HttpLimits & {
    maxJsonBytes: number;
    /** Upload cap for policies; default the engine's maxModuleBytes. */
    maxPolicyBytes: number;
    /** In-flight requests get this long to finish at shutdown. */
    shutdownGraceMs: number;
  };
  audit: {
    durability: Durability;
    /** Delete audit records older than this many days. */
    retentionDays?: number;
    /** Keep at most this many audit records. */
    retentionRecords?: number;
    /** How often retention runs. Default 3600 s. */
    pruneIntervalS: number;
  };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' };
  metrics: {
    /**
     * How often the event loop's delay is sampled for /v1/metrics (ms). A stall is measured to
     * within this; each sample wakes the loop (at 1 ms, ~3% of a core on the 2-core VM). Default 5.
     */
    eventLoopResolutionMs: number;
  };
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends Array<unknown> ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** What a config file or startDaemon() accepts: any subset; socketGroup may be a group name. */
export type DaemonConfigInput = DeepPartial<Omit<DaemonConfig, 'request'>> & { request?: DeepPartial<Omit<DaemonConfig['request'], 'socketGroup'>> & { socketGroup?: number | string } };

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface Environment extends LocationEnvironment {
  cores: number;
}

/** Default directories (socket-locations.ts: CAPGATE_RUN_DIR, else by uid), shared with the clients. */
export function defaultDirs(env: LocationEnvironment): { runDir: string; stateDir: string } {
  return { runDir: defaultRunDir(env), stateDir: builtInDirs(env).stateDir };
}

const SHAPE: Record<string, Record<string, 'number' | 'string' | 'numbers' | 'object'> | 'string'> = {
  runDir: 'string',
  stateDir: 'string',
  adminSocket: 'string',
  requestSocket: 'string',
  database: 'string',
  admin: { socketMode: 'number', allowUids: 'numbers', allowGids: 'numbers' },
  request: {
    socketMode: 'number',
    socketGroup: 'string',
    deadlineMs: 'number',
    retryAfterS: 'number',
    identityCacheMs: 'number',
    connectionsPerVm: 'number',
    connectionsPerUid: 'number',
    connectionsOutsideVms: 'number',
  },
  engine: { workers: 'number', inlineFuel: 'number', inlineBudgetMs: 'number', limits: 'object' },
  scheduler: { globalConcurrency: 'number', perKeyInFlight: 'number', maxQueued: 'number', maxQueuedPerKey: 'number' },
  http: {
    headersTimeoutMs: 'number',
    requestTimeoutMs: 'number',
    keepAliveTimeoutMs: 'number',
    maxConnections: 'number',
    maxHeaderBytes: 'number',
    maxJsonBytes: 'number',
    maxPolicyBytes: 'number',
    shutdownGraceMs: 'number',
  },
  audit: { durability: 'string', retentionDays: 'number', retentionRecords: 'number', pruneIntervalS: 'number' },
  log: { level: 'string' },
  metrics: { eventLoopResolutionMs: 'number' },
};

/** Rejects unknown keys and wrong types, naming the key (typos must not be silently ignored). */
export function checkConfigShape(input: unknown, source: string): DaemonConfigInput {
  if (input === null || input === undefined) return {};
  if (typeof input !== 'object' || Array.isArray(input)) throw new ConfigError(`${source}: the configuration must be a mapping of keys to values`);
  for (const [key, value] of Object.entries(input)) {
    const shape = SHAPE[key];
    if (shape === undefined) throw new ConfigError(`${source}: unknown key "${key}" (known: ${Object.keys(SHAPE).join(', ')})`);
    if (shape === 'string') {
      if (typeof value !== 'string' || value === '') throw new ConfigError(`${source}: ${key} must be a non-empty string`);
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`${source}: ${key} must be a mapping`);
    for (const [sub, v] of Object.entries(value)) {
      const t = shape[sub];
      const name = `${key}.${sub}`;
      if (t === undefined) throw new ConfigError(`${source}: unknown key "${name}" (known under ${key}: ${Object.keys(shape).join(', ')})`);
      if (t === 'number' && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) throw new ConfigError(`${source}: ${name} must be a non-negative number`);
      if (t === 'numbers' && (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= 0))) throw new ConfigError(`${source}: ${name} must be a list of non-negative integers`);
      if (t === 'string' && typeof v !== 'string' && !(name === 'request.socketGroup' && Number.isInteger(v))) throw new ConfigError(`${source}: ${name} must be a string`);
      if (t === 'object' && (typeof v !== 'object' || v === null)) throw new ConfigError(`${source}: ${name} must be a mapping`);
    }
  }
  return input as DaemonConfigInput;
}

/** Reads a YAML (or JSON) config file. */
export function loadConfigFile(file: string): DaemonConfigInput {
  let text: string;
  try {
    // Root reads only a config file nobody else could have written (path-trust.ts).
    text = readTrustedFile(file, 'the config file');
  } catch (err) {
    if (err instanceof UntrustedPathError) throw new ConfigError(err.message);
    throw new ConfigError(`cannot read the config file ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`${file} is not valid YAML: ${(err as Error).message}`);
  }
  const config = checkConfigShape(parsed, file);
  // Relative paths in a file are relative to the file, not to wherever the daemon was started.
  const dir = path.dirname(path.resolve(file));
  for (const k of ['runDir', 'stateDir', 'adminSocket', 'requestSocket', 'database'] as const) {
    const v = config[k];
    if (typeof v === 'string') config[k] = path.resolve(dir, v);
  }
  return config;
}

/** Fills defaults and checks values. */
export function resolveConfig(input: DaemonConfigInput = {}, env: Environment = currentEnvironment()): DaemonConfig {
  checkConfigShape(input, 'configuration');
  const dirs = defaultDirs(env);
  const runDir = path.resolve(env.cwd, input.runDir ?? dirs.runDir);
  const stateDir = path.resolve(env.cwd, input.stateDir ?? dirs.stateDir);
  const workers = input.engine?.workers ?? Math.max(1, Math.min(2, env.cores));
  const limits = (input.engine?.limits ?? {}) as Partial<EngineLimits>;
  const group = input.request?.socketGroup;
  const socketGroup = group === undefined ? undefined : typeof group === 'number' ? group : lookupGroup(group);
  const config: DaemonConfig = {
    runDir,
    stateDir,
    adminSocket: path.resolve(runDir, input.adminSocket ?? socketFromEnvironment('admin', env) ?? 'admin.sock'),
    requestSocket: path.resolve(runDir, input.requestSocket ?? socketFromEnvironment('request', env) ?? 'request.sock'),
    database: path.resolve(stateDir, input.database ?? 'capgate.db'),
    admin: {
      socketMode: input.admin?.socketMode ?? 0o600,
      allowUids: input.admin?.allowUids ?? [...new Set([0, env.uid])],
      allowGids: input.admin?.allowGids ?? [],
    },
    request: {
      socketMode: input.request?.socketMode ?? (socketGroup === undefined ? 0o666 : 0o660),
      ...(socketGroup !== undefined ? { socketGroup } : {}),
      deadlineMs: input.request?.deadlineMs ?? 1000,
      retryAfterS: input.request?.retryAfterS ?? 1,
      identityCacheMs: input.request?.identityCacheMs ?? 1000,
      connectionsPerVm: input.request?.connectionsPerVm ?? 64,
      connectionsPerUid: input.request?.connectionsPerUid ?? 8,
      connectionsOutsideVms: input.request?.connectionsOutsideVms ?? 32,
    },
    engine: { workers, inlineFuel: input.engine?.inlineFuel ?? DEFAULT_INLINE_FUEL, inlineBudgetMs: input.engine?.inlineBudgetMs ?? DEFAULT_INLINE_BUDGET_MS, limits },
    scheduler: {
      globalConcurrency: input.scheduler?.globalConcurrency ?? workers,
      // One VM can never hold every worker: the others always have one to run on.
      perKeyInFlight: input.scheduler?.perKeyInFlight ?? Math.max(1, workers - 1),
      maxQueued: input.scheduler?.maxQueued ?? 1024,
      maxQueuedPerKey: input.scheduler?.maxQueuedPerKey ?? 256,
    },
    http: {
      headersTimeoutMs: input.http?.headersTimeoutMs ?? 5_000,
      requestTimeoutMs: input.http?.requestTimeoutMs ?? 30_000,
      keepAliveTimeoutMs: input.http?.keepAliveTimeoutMs ?? 60_000,
      maxConnections: input.http?.maxConnections ?? 1024,
      maxHeaderBytes: input.http?.maxHeaderBytes ?? 16 * 1024,
      maxJsonBytes: input.http?.maxJsonBytes ?? 64 * 1024,
      maxPolicyBytes: input.http?.maxPolicyBytes ?? limits.maxModuleBytes ?? 4 * 1024 * 1024,
      shutdownGraceMs: input.http?.shutdownGraceMs ?? 5_000,
    },
    audit: {
      durability: input.audit?.durability ?? 'normal',
      ...(input.audit?.retentionDays !== undefined ? { retentionDays: input.audit.retentionDays } : {}),
      ...(input.audit?.retentionRecords !== undefined ? { retentionRecords: input.audit.retentionRecords } : {}),
      pruneIntervalS: input.audit?.pruneIntervalS ?? 3600,
    },
    log: { level: input.log?.level ?? 'info' },
    metrics: { eventLoopResolutionMs: input.metrics?.eventLoopResolutionMs ?? 5 },
  };
  validate(config);
  return config;
}

function validate(c: DaemonConfig): void {
  const positive: Array<[string, number]> = [
    ['engine.workers', c.engine.workers],
    ['scheduler.globalConcurrency', c.scheduler.globalConcurrency],
    ['scheduler.perKeyInFlight', c.scheduler.perKeyInFlight],
    ['scheduler.maxQueued', c.scheduler.maxQueued],
    ['scheduler.maxQueuedPerKey', c.scheduler.maxQueuedPerKey],
    ['request.deadlineMs', c.request.deadlineMs],
    ['http.maxConnections', c.http.maxConnections],
    ['http.maxJsonBytes', c.http.maxJsonBytes],
    ['http.maxPolicyBytes', c.http.maxPolicyBytes],
    ['request.connectionsPerVm', c.request.connectionsPerVm],
    ['request.connectionsPerUid', c.request.connectionsPerUid],
    ['request.connectionsOutsideVms', c.request.connectionsOutsideVms],
  ];
  for (const [k, v] of positive) if (!Number.isInteger(v) || v < 1) throw new ConfigError(`${k} must be a positive integer, got ${v}`);
  for (const [k, v] of [['admin.socketMode', c.admin.socketMode], ['request.socketMode', c.request.socketMode]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0o777) throw new ConfigError(`${k} must be a file mode such as 0o600 (384), got ${v}`);
  }
  if (!Number.isInteger(c.metrics.eventLoopResolutionMs) || c.metrics.eventLoopResolutionMs < 1) throw new ConfigError(`metrics.eventLoopResolutionMs must be a positive integer (milliseconds), got ${c.metrics.eventLoopResolutionMs}`);
  if (!(c.engine.inlineBudgetMs > 0) || c.engine.inlineBudgetMs > 1000) throw new ConfigError(`engine.inlineBudgetMs must be a number of milliseconds in (0, 1000] (the daemon's thread is shared by every VM), got ${c.engine.inlineBudgetMs}`);
  if (!Number.isSafeInteger(c.engine.inlineFuel) || c.engine.inlineFuel < 0) throw new ConfigError(`engine.inlineFuel must be a non-negative integer (fuel units; 0 runs every evaluation in a worker), got ${c.engine.inlineFuel}`);
  if (!Number.isInteger(c.request.identityCacheMs) || c.request.identityCacheMs < 0) throw new ConfigError(`request.identityCacheMs must be a non-negative integer (milliseconds; 0 disables the cache), got ${c.request.identityCacheMs}`);
  if (c.audit.durability !== 'normal' && c.audit.durability !== 'full') throw new ConfigError(`audit.durability must be "normal" or "full", got ${String(c.audit.durability)}`);
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
  if (!levels.includes(c.log.level)) throw new ConfigError(`log.level must be one of ${levels.join(', ')}`);
  if (c.adminSocket === c.requestSocket) throw new ConfigError('adminSocket and requestSocket must be different paths');
  const r = c.request;
  const max = c.http.maxConnections;
  if (r.connectionsOutsideVms >= max) throw new ConfigError(`request.connectionsOutsideVms (${r.connectionsOutsideVms}) must be below http.maxConnections (${max}): the rest is reserved for VMs`);
  if (r.connectionsPerUid > r.connectionsOutsideVms) throw new ConfigError(`request.connectionsPerUid (${r.connectionsPerUid}) must not exceed request.connectionsOutsideVms (${r.connectionsOutsideVms}), the budget it is part of`);
  if (r.connectionsPerVm > max) throw new ConfigError(`request.connectionsPerVm (${r.connectionsPerVm}) must not exceed http.maxConnections (${max})`);
}

function lookupGroup(name: string): number {
  if (/^[0-9]+$/.test(name)) return Number(name);
  let groups = '';
  try {
    groups = fs.readFileSync('/etc/group', 'utf8');
  } catch {
    // fall through to the error below
  }
  const line = groups.split('\n').find((l) => l.split(':')[0] === name);
  const gid = line ? Number(line.split(':')[2]) : NaN;
  if (!Number.isInteger(gid)) throw new ConfigError(`request.socketGroup: no group named "${name}" in /etc/group; use a gid or an existing group`);
  return gid;
}

export function currentEnvironment(): Environment {
  return { uid: process.getuid?.() ?? 0, cwd: process.cwd(), vars: process.env, cores: os.availableParallelism() };
}
