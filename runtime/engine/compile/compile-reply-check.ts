// What the launcher accepts from a compile process. That process decodes untrusted bytes, so it
// may be running an attacker's code: each message is checked for shape and size and rebuilt
// from the fields checked (nothing else crosses to the daemon), and a result's sha256 and size
// must be the job's own bytes' (a result filed under another policy's hash would replace that
// policy). The limits a policy runs under are the job's, whatever the process says.
import { createHash } from 'node:crypto';
import type { CompileErrorKind } from '../api.ts';
import type { InstantiationCost } from '../instantiation-cost.ts';
import type { EngineLimits } from '../limits.ts';
import type { CompileResultOnWire, LandlockReport, SandboxReport } from './compile-protocol.ts';

/** A refusal's message (the pipeline bounds its own to ~1 KB). */
const MAX_MESSAGE_CHARS = 4096;
const MAX_WIT_CHARS = 1024 * 1024;
const MAX_NAMES = 1024;
const MAX_NAME_CHARS = 1024;
const ERROR_KINDS = ['invalid-module', 'disallowed-import', 'memory-limit'] as const satisfies CompileErrorKind[];
const COST_FIELDS = [
  'tableEntries',
  'elementEntries',
  'dataBytes',
  'globals',
  'initialPages',
  'trialUs',
] as const satisfies (keyof InstantiationCost)[];

/** The most a result may take on the wire: the instrumented core (fuel checks add well under 2x) and the WIT. */
export function maxResultBytes(limits: EngineLimits): number {
  return 4 * limits.maxModuleBytes + 2 * MAX_WIT_CHARS;
}

/** Thrown for a message the launcher does not take; the compile process is then killed. */
export class BadReply extends Error {}

type Fields = Record<string, unknown>;

function object(v: unknown, what: string): Fields {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadReply(`${what} is not an object`);
  return v as Fields;
}

function text(v: unknown, max: number, what: string): string {
  if (typeof v !== 'string') throw new BadReply(`${what} is not a string`);
  if (v.length > max) throw new BadReply(`${what} has ${v.length} characters; at most ${max} are taken`);
  return v;
}

function count(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new BadReply(`${what} is not a number >= 0`);
  return v;
}

function names(v: unknown, what: string): string[] {
  if (!Array.isArray(v)) throw new BadReply(`${what} is not a list`);
  if (v.length > MAX_NAMES) throw new BadReply(`${what} has ${v.length} entries; at most ${MAX_NAMES} are taken`);
  return v.map((n, i) => text(n, MAX_NAME_CHARS, `${what}[${i}]`));
}

/** A Landlock report (a `ready`'s, a launcher's). */
export function checkLandlockReport(v: unknown): LandlockReport {
  const r = object(v, 'the Landlock report');
  const abi = count(r.abi, 'the Landlock ABI');
  if (!Number.isInteger(abi) || abi > 1024) throw new BadReply(`the Landlock ABI ${abi} is not a version`);
  if (abi === 0) return { abi: 0, why: text(r.why, MAX_MESSAGE_CHARS, 'why there is no Landlock domain') };
  if (r.threads !== 'all' && r.threads !== 'calling')
    throw new BadReply("the Landlock report's threads is neither all nor calling");
  return { abi, threads: r.threads };
}

/** The sandbox report of a `ready` message. */
export function checkSandboxReport(v: unknown): SandboxReport {
  const r = object(v, 'the sandbox report');
  if (r.applied === false) return { applied: false, missing: text(r.missing, MAX_MESSAGE_CHARS, 'what is missing') };
  if (r.applied !== true) throw new BadReply('the sandbox report says neither applied nor not');
  if (!Array.isArray(r.closedFds) || r.closedFds.length > 1024) throw new BadReply('closedFds is not a short list');
  return {
    applied: true,
    ms: count(r.ms, 'ms'),
    closedFds: r.closedFds.map((fd, i) => count(fd, `closedFds[${i}]`)),
    boundingSet: text(r.boundingSet, 256, 'boundingSet'),
    landlock: checkLandlockReport(r.landlock),
  };
}

/** The result of the job of `bytes` and `limits`. */
export function checkResult(v: unknown, bytes: Uint8Array, limits: EngineLimits): CompileResultOnWire {
  const r = object(v, 'the result');
  if (r.ok === false) {
    const kind = ERROR_KINDS.find((k) => k === r.kind);
    if (kind === undefined) throw new BadReply('the refusal has no known kind');
    return { ok: false, kind, message: text(r.message, MAX_MESSAGE_CHARS, 'the refusal message') };
  }
  if (r.ok !== true) throw new BadReply('the result is neither ok nor not');
  if (!(r.core instanceof Uint8Array)) throw new BadReply('the core module is not bytes');
  const p = object(r.policy, 'the policy');
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (p.sha256 !== sha256) throw new BadReply("the policy's sha256 is not that of the bytes compiled");
  if (p.size !== bytes.length) throw new BadReply("the policy's size is not that of the bytes compiled");
  let instantiation: InstantiationCost | undefined;
  if (p.instantiation !== undefined) {
    const c = object(p.instantiation, 'the instantiation cost');
    instantiation = Object.fromEntries(COST_FIELDS.map((f) => [f, count(c[f], f)])) as unknown as InstantiationCost;
  }
  return {
    ok: true,
    core: new Uint8Array(r.core),
    policy: {
      sha256,
      size: bytes.length,
      imports: names(p.imports, 'imports'),
      exports: names(p.exports, 'exports'),
      hostFunctions: names(p.hostFunctions, 'hostFunctions'),
      wit: text(p.wit, MAX_WIT_CHARS, 'the WIT'),
      limits: { ...limits },
      ...(instantiation !== undefined ? { instantiation } : {}),
    },
  };
}
