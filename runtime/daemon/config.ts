// Daemon configuration: defaults that serve a newcomer, a YAML/JSON config file, and
// validation that names the offending key and says what it should be. The keys, their types,
// ranges, defaults and meanings are one schema: runtime/config/schema.ts.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ConfigInputSchema, ConfigSchema, type DaemonConfig, type DaemonConfigInput } from '../config/schema.ts';
import { withDefaults } from '../config/defaults.ts';
import { compileValidator } from '../wire/schemas/validate.ts';
import { isJsonObject } from '../wire/json-object.ts';
import { currentEnvironment, defaultDirs, type Environment } from './environment.ts';
import { TrustRootError, TrustRoots } from '../signing/trust-roots.ts';
import { readTrustedFile, UntrustedPathError } from './path-trust.ts';
import { SOCKET_FILE, socketFromEnvironment } from './socket-locations.ts';

export type { DaemonConfig, DaemonConfigInput };

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export { currentEnvironment, defaultDirs, type Environment };

const inputValidator = compileValidator(ConfigInputSchema);

/** Rejects unknown keys, wrong types and values out of range, naming the key (typos must not be silently ignored). */
export function checkConfigShape(input: unknown, source: string): DaemonConfigInput {
  if (input === null || input === undefined) return {};
  const r = inputValidator.validate(input, 5);
  if (!r.ok) throw new ConfigError(`${source}: ${r.message}`);
  return input as DaemonConfigInput;
}

/**
 * `over` merged into `base` key by key at every level of mappings: --config-json sets single
 * keys of the file's sections instead of replacing them. Lists and values replace.
 */
export function mergeConfig(base: DaemonConfigInput, over: DaemonConfigInput): DaemonConfigInput {
  return mergeDeep(base, over) as DaemonConfigInput;
}

function mergeDeep(base: unknown, over: unknown): unknown {
  if (!isJsonObject(base) || !isJsonObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    // Checked input has no such key (unknown keys are refused); never let one reach a prototype.
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
    out[k] = Object.hasOwn(out, k) ? mergeDeep(out[k], v) : v;
  }
  return out;
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
  if (typeof config.policies?.directory === 'string')
    config.policies.directory = path.resolve(dir, config.policies.directory);
  return config;
}

/** Fills defaults (the schema's, then those that depend on the host and on other keys) and checks values. */
export function resolveConfig(input: DaemonConfigInput = {}, env: Environment = currentEnvironment()): DaemonConfig {
  checkConfigShape(input, 'configuration');
  const d = withDefaults(ConfigSchema, input) as DaemonConfigInput &
    Pick<DaemonConfig, 'database' | 'engine' | 'audit' | 'log' | 'policies' | 'metrics'> & {
      admin: Omit<DaemonConfig['admin'], 'allowUids'> & { allowUids?: number[] };
      request: Omit<DaemonConfig['request'], 'socketMode' | 'socketGroup'> & {
        socketMode?: number;
        socketGroup?: number | string;
      };
      scheduler: Omit<DaemonConfig['scheduler'], 'globalConcurrency' | 'perKeyInFlight' | 'mainThreadShare'> &
        Partial<DaemonConfig['scheduler']>;
      http: Omit<DaemonConfig['http'], 'maxPolicyBytes'> & { maxPolicyBytes?: number };
    };
  const dirs = defaultDirs(env);
  const runDir = path.resolve(env.cwd, d.runDir ?? dirs.runDir);
  const stateDir = path.resolve(env.cwd, d.stateDir ?? dirs.stateDir);
  const workers = input.engine?.workers ?? Math.max(1, Math.min(2, env.cores));
  const group = d.request.socketGroup;
  const socketGroup = group === undefined ? undefined : typeof group === 'number' ? group : lookupGroup(group);
  const { socketGroup: _given, ...request } = d.request;
  const config: DaemonConfig = {
    runDir,
    stateDir,
    adminSocket: path.resolve(runDir, d.adminSocket ?? socketFromEnvironment('admin', env) ?? SOCKET_FILE.admin),
    requestSocket: path.resolve(
      runDir,
      d.requestSocket ?? socketFromEnvironment('request', env) ?? SOCKET_FILE.request,
    ),
    database: path.resolve(stateDir, d.database),
    admin: { ...d.admin, allowUids: d.admin.allowUids ?? [...new Set([0, env.uid])] },
    request: {
      ...request,
      socketMode: request.socketMode ?? (socketGroup === undefined ? 0o666 : 0o660),
      ...(socketGroup !== undefined ? { socketGroup } : {}),
    },
    engine: { ...d.engine, workers },
    scheduler: {
      ...d.scheduler,
      globalConcurrency: d.scheduler.globalConcurrency ?? workers,
      // One VM can never hold every worker: the others always have one to run on.
      perKeyInFlight: d.scheduler.perKeyInFlight ?? Math.max(1, workers - 1),
      mainThreadShare: d.scheduler.mainThreadShare ?? d.scheduler.vmShare,
    },
    http: { ...d.http, maxPolicyBytes: d.http.maxPolicyBytes ?? d.engine.limits.maxModuleBytes },
    audit: d.audit,
    log: d.log,
    policies: {
      ...d.policies,
      trustRoots: d.policies.trustRoots.map((r) => ({ name: r.name, publicKey: r.publicKey })),
      ...(d.policies.directory !== undefined ? { directory: path.resolve(env.cwd, d.policies.directory) } : {}),
    },
    metrics: d.metrics,
  };
  validate(config);
  return config;
}

/**
 * Whether the largest upload can arrive within the request timeout under the upload budget
 * (server/http/byte-rate-budget.ts); undefined: it can. Said at start, not refused: a short
 * timeout (a test's, a host's that wants slow clients cut off) is a choice, and only uploads
 * near http.maxPolicyBytes are cut off by it.
 */
export function uploadBudgetShortfall(c: DaemonConfig): string | undefined {
  const { uploadBytesPerSecond, uploadBurstBytes } = c.admin;
  const uploadMs = (1000 * Math.max(0, c.http.maxPolicyBytes - uploadBurstBytes)) / uploadBytesPerSecond;
  if (uploadMs < c.http.requestTimeoutMs) return undefined;
  return `admin.uploadBytesPerSecond (${uploadBytesPerSecond}) reads a policy of http.maxPolicyBytes (${c.http.maxPolicyBytes}) in ${Math.ceil(uploadMs)} ms, past http.requestTimeoutMs (${c.http.requestTimeoutMs}): uploads that large get 408; raise the rate or admin.uploadBurstBytes, or the timeout`;
}

/** What one key cannot say about itself: relations between keys. */
function validate(c: DaemonConfig): void {
  if (c.adminSocket === c.requestSocket) throw new ConfigError('adminSocket and requestSocket must be different paths');
  const r = c.request;
  const max = c.http.maxConnections;
  if (r.connectionsOutsideVms >= max)
    throw new ConfigError(
      `request.connectionsOutsideVms (${r.connectionsOutsideVms}) must be below http.maxConnections (${max}): the rest is reserved for VMs`,
    );
  if (r.connectionsPerUid > r.connectionsOutsideVms)
    throw new ConfigError(
      `request.connectionsPerUid (${r.connectionsPerUid}) must not exceed request.connectionsOutsideVms (${r.connectionsOutsideVms}), the budget it is part of`,
    );
  if (r.connectionsPerVm > max)
    throw new ConfigError(
      `request.connectionsPerVm (${r.connectionsPerVm}) must not exceed http.maxConnections (${max})`,
    );
  const names = new Set<string>();
  c.policies.trustRoots.forEach((r, i) => {
    if (names.has(r.name)) throw new ConfigError(`policies.trustRoots[${i}].name "${r.name}" is listed twice`);
    names.add(r.name);
  });
  try {
    new TrustRoots(c.policies.trustRoots, c.policies.requireSignatures);
  } catch (err) {
    if (err instanceof TrustRootError)
      throw new ConfigError(
        `${err.message}. Fix: copy the second line of the key's minisign .pub file (\`RW…\`), as \`minisign -G\` prints it`,
      );
    throw err;
  }
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
  if (!Number.isInteger(gid))
    throw new ConfigError(
      `request.socketGroup: no group named "${name}" in /etc/group; use a gid or an existing group`,
    );
  return gid;
}
