// The request channel: what an unprivileged client sends and what it gets back.
import { MEMLOCK_UNLIMITED } from '../contract/types.ts';
import type { ErrorKind } from '../engine/outcome.ts';

/**
 * Body of POST /v1/operations/set-memlock. Only the target and the amount: who is asking
 * (pid, uid, VM) comes from the kernel, never from the body.
 */
export interface SetMemlockBody {
  targetPid: number;
  /** Bytes as a JSON number (<= 2^53-1), a decimal string (u64), or "unlimited". */
  bytes: number | string;
}

export interface DecisionResponse {
  decision: 'allow' | 'deny';
  /** The policy's deny reason, or the failure's kind; empty for allow. */
  reason: string;
  decisionId: string;
  errorKind?: ErrorKind | DaemonDenyKind;
}

/**
 * Denies the daemon decides itself: before any policy runs, or, for `decision-lost`, at a
 * restart, for a decision whose effects were recorded (intents) but not its decision: the
 * daemon was killed in between. Its record lists those effects and how undoing them went.
 */
export type DaemonDenyKind = 'unknown-requester' | 'no-policy' | 'deadline' | 'decision-lost';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string; hint?: string };

const U32_MAX = 0xffff_ffff;

/** Parses the `bytes` field: number, decimal string, or "unlimited" -> u64. */
export function parseBytes(value: unknown): ParseResult<bigint> {
  const hint = 'send bytes as a non-negative integer, a decimal string such as "17179869184", or "unlimited"';
  if (value === 'unlimited') return { ok: true, value: MEMLOCK_UNLIMITED };
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) return { ok: false, message: `bytes ${value} is not a non-negative safe integer`, hint };
    return { ok: true, value: BigInt(value) };
  }
  if (typeof value === 'string') {
    if (!/^[0-9]{1,20}$/.test(value)) return { ok: false, message: `bytes "${value.slice(0, 40)}" is not a decimal u64`, hint };
    const n = BigInt(value);
    if (n > MEMLOCK_UNLIMITED) return { ok: false, message: `bytes ${value} is larger than u64 max`, hint };
    return { ok: true, value: n };
  }
  return { ok: false, message: `bytes must be a number or a string, got ${value === null ? 'null' : typeof value}`, hint };
}

/** Validates a parsed JSON body of set-memlock. */
export function parseSetMemlockBody(body: unknown): ParseResult<{ targetPid: number; bytes: bigint }> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, message: 'the body must be a JSON object', hint: 'send {"targetPid": <pid>, "bytes": <bytes>}' };
  }
  const extra = Object.keys(body).filter((k) => k !== 'targetPid' && k !== 'bytes');
  if (extra.length > 0) {
    return { ok: false, message: `unknown field(s): ${extra.join(', ')}`, hint: 'the body carries only targetPid and bytes; identity comes from the socket' };
  }
  const { targetPid, bytes } = body as { targetPid?: unknown; bytes?: unknown };
  if (typeof targetPid !== 'number' || !Number.isInteger(targetPid) || targetPid <= 0 || targetPid > U32_MAX) {
    return { ok: false, message: 'targetPid must be a positive integer pid', hint: 'send {"targetPid": <pid>, "bytes": <bytes>}' };
  }
  const parsed = parseBytes(bytes);
  if (!parsed.ok) return parsed;
  return { ok: true, value: { targetPid, bytes: parsed.value } };
}

/** The wire form of a u64 byte count: "unlimited" or a decimal string. */
export function formatBytes(bytes: bigint): string {
  return bytes === MEMLOCK_UNLIMITED ? 'unlimited' : bytes.toString();
}
