// Validation of a VM registration from the admin API. The input is JSON from the management
// layer; the output is a RegisteredVm whose root-pid anchor carries the start time the kernel
// reports now, so a pid reused later never matches it.
//
// Accepted shape (unknown keys are refused, so typos do not silently drop an anchor):
//   { identity: { uuid, name, id, labels }, anchor: { rootPid?, rootStartTime?, cgroup? } }
// labels: [[key, value], ...] or { key: value }. rootStartTime, when given, must equal the
// current start time of rootPid (lets the caller pin the exact process it meant).
import type { VmIdentity } from '../contract/types.ts';
import type { RegisteredVm, VmAnchor } from './vm.ts';
import { normalizeCgroupPath } from './cgroup-path.ts';
import { isValidPid, pidMax } from '../os/pid.ts';
import { isJsonObject } from '../wire/json-object.ts';
import { readStartTime } from '../os/proc-stat.ts';

export const MAX_NAME_CHARS = 253;
export const MAX_LABELS = 64;
export const MAX_LABEL_KEY_BYTES = 253;
export const MAX_LABEL_VALUE_BYTES = 1024;

export type VmRegistrationResult = { ok: true; vm: RegisteredVm } | { ok: false; error: string };

/** RFC 4122 (and RFC 9562) textual form: versions 1-8, variant 10xx. Nil and max uuids are refused. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
// Control characters (C0, DEL, C1) and lone surrogates (not encodable as UTF-8).
const UNPRINTABLE = /[\p{Cc}\p{Cs}]/u;

class Invalid extends Error {}
const fail = (message: string): never => {
  throw new Invalid(message);
};

function onlyKeys(obj: Record<string, unknown>, where: string, allowed: readonly string[]): void {
  const extra = Object.keys(obj).filter((k) => !allowed.includes(k));
  if (extra.length > 0)
    fail(`${where} has unknown field(s) ${extra.map((k) => `"${k}"`).join(', ')}; allowed: ${allowed.join(', ')}`);
}

function validateUuid(v: unknown): string {
  if (typeof v !== 'string' || !UUID.test(v)) {
    fail(
      `identity.uuid must be an RFC 4122 uuid like "3f2b8c1e-9d4a-4b6e-8f10-2a7c5e9d0b13", got ${JSON.stringify(v)}`,
    );
  }
  return (v as string).toLowerCase();
}

function validateName(v: unknown): string {
  if (typeof v !== 'string') return fail('identity.name must be a string');
  const chars = [...v].length;
  if (chars < 1 || chars > MAX_NAME_CHARS) fail(`identity.name must be 1..${MAX_NAME_CHARS} characters, got ${chars}`);
  if (UNPRINTABLE.test(v)) fail('identity.name must be printable (no control characters)');
  return v;
}

function validateId(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x8000_0000 || v > 0x7fff_ffff) {
    fail(`identity.id must be a signed 32-bit integer, got ${JSON.stringify(v)}`);
  }
  return v as number;
}

function labelEntries(v: unknown): Array<[unknown, unknown]> {
  if (v === undefined) return [];
  if (Array.isArray(v)) {
    return v.map((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2) fail(`identity.labels[${i}] must be a [key, value] pair`);
      return [pair[0], pair[1]] as [unknown, unknown];
    });
  }
  if (isJsonObject(v)) return Object.entries(v);
  return fail('identity.labels must be a list of [key, value] pairs or an object of string values');
}

function validateLabels(v: unknown): Array<[string, string]> {
  const entries = labelEntries(v);
  if (entries.length > MAX_LABELS)
    fail(`identity.labels has ${entries.length} labels; at most ${MAX_LABELS} are allowed`);
  const seen = new Set<string>();
  return entries.map(([key, value]) => {
    if (typeof key !== 'string' || typeof value !== 'string')
      return fail(`label ${JSON.stringify(key)} must have a string key and a string value`);
    const keyBytes = Buffer.byteLength(key);
    if (keyBytes < 1 || keyBytes > MAX_LABEL_KEY_BYTES)
      fail(`label key ${JSON.stringify(key.slice(0, 40))} must be 1..${MAX_LABEL_KEY_BYTES} bytes, is ${keyBytes}`);
    if (Buffer.byteLength(value) > MAX_LABEL_VALUE_BYTES)
      fail(`label "${key}" has a value longer than ${MAX_LABEL_VALUE_BYTES} bytes`);
    if (UNPRINTABLE.test(key) || UNPRINTABLE.test(value))
      fail(`label "${key.replace(UNPRINTABLE, '?')}" contains control characters`);
    if (seen.has(key)) fail(`label key "${key}" appears more than once`);
    seen.add(key);
    return [key, value];
  });
}

function validateAnchor(v: unknown): VmAnchor {
  if (!isJsonObject(v)) return fail('anchor must be an object with rootPid and/or cgroup');
  onlyKeys(v, 'anchor', ['rootPid', 'rootStartTime', 'cgroup']);
  const anchor: VmAnchor = {};
  if (v.rootPid !== undefined) {
    if (!isValidPid(v.rootPid))
      fail(`anchor.rootPid must be a pid in [1, ${pidMax()}), got ${JSON.stringify(v.rootPid)}`);
    const rootPid = v.rootPid as number;
    const startTime = readStartTime(rootPid);
    if (startTime === null)
      fail(`anchor.rootPid ${rootPid} is not a running process; register the VM while its root process runs`);
    if (v.rootStartTime !== undefined && v.rootStartTime !== startTime) {
      fail(
        `anchor.rootStartTime ${JSON.stringify(v.rootStartTime)} does not match pid ${rootPid} (start time ${startTime}): the process was replaced; re-read /proc/${rootPid}/stat`,
      );
    }
    anchor.rootPid = rootPid;
    anchor.rootStartTime = startTime as number;
  } else if (v.rootStartTime !== undefined) {
    fail('anchor.rootStartTime is only meaningful together with anchor.rootPid');
  }
  if (v.cgroup !== undefined) {
    const cgroup = normalizeCgroupPath(v.cgroup);
    if (!cgroup.ok) fail(cgroup.error);
    else anchor.cgroup = cgroup.path;
  }
  if (anchor.rootPid === undefined && anchor.cgroup === undefined)
    fail('anchor needs at least one of rootPid or cgroup');
  return anchor;
}

/** Validates an admin registration; never throws. Reads /proc to pin the root pid's start time. */
export function validateVmRegistration(input: unknown): VmRegistrationResult {
  try {
    if (!isJsonObject(input)) fail('a VM registration must be an object { identity, anchor }');
    const body = input as Record<string, unknown>;
    onlyKeys(body, 'registration', ['identity', 'anchor']);
    if (!isJsonObject(body.identity)) fail('identity must be an object { uuid, name, id, labels }');
    const id = body.identity as Record<string, unknown>;
    onlyKeys(id, 'identity', ['uuid', 'name', 'id', 'labels']);
    const identity: VmIdentity = {
      uuid: validateUuid(id.uuid),
      name: validateName(id.name),
      id: validateId(id.id),
      labels: validateLabels(id.labels),
    };
    return { ok: true, vm: { identity, anchor: validateAnchor(body.anchor) } };
  } catch (e) {
    if (e instanceof Invalid) return { ok: false, error: e.message };
    throw e;
  }
}
