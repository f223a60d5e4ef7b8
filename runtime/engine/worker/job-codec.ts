// Evaluate job <-> bytes, for the job mailbox. The request has a fixed layout; the capability
// spec is an open shape owned by the capabilities module, so it goes through V8's serializer
// (structured-clone semantics, as postMessage would give) as an opaque byte string.
import { serialize } from 'node:v8';
import type { PolicyRequest } from '../../contract/types.ts';
import { MailboxOverflow, type ByteReader, type ByteWriter } from './byte-codec.ts';

export interface EncodedJob {
  id: number;
  sha256: string;
  request: PolicyRequest;
  /** v8.serialize(CapabilitySpec); the worker deserializes (or reuses an identical previous one). */
  spec: Uint8Array;
  /** The decision's context as JSON (effects/effect-intent.ts), when its effects are journaled. */
  context?: string;
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;

function number(v: unknown): number {
  if (typeof v !== 'number') throw new MailboxOverflow();
  return v;
}

/** Throws MailboxOverflow when the job does not fit or a field is not of its declared type
 * (the port then carries it as is, and the worker treats it exactly as before). */
export function writeJob(
  w: ByteWriter,
  id: number,
  sha256: string,
  request: PolicyRequest,
  specBytes: Uint8Array,
  context?: string,
): void {
  if (typeof request.operation !== 'string' || typeof sha256 !== 'string') throw new MailboxOverflow();
  if (typeof request.bytes !== 'bigint' || request.bytes < 0n || request.bytes > U64_MAX) throw new MailboxOverflow();
  w.u32(id);
  w.string(sha256);
  w.string(request.operation);
  w.f64(number(request.requesterPid));
  w.f64(number(request.requesterUid));
  w.f64(number(request.targetPid));
  w.u64(request.bytes);
  w.bytes(specBytes);
  if (context === undefined) w.u8(0);
  else {
    if (typeof context !== 'string') throw new MailboxOverflow();
    w.u8(1);
    w.string(context);
  }
}

export function serializeSpec(spec: unknown): Uint8Array {
  return serialize(spec);
}

export function readJob(r: ByteReader): EncodedJob {
  const id = r.u32();
  const sha256 = r.string();
  const operation = r.string() as PolicyRequest['operation'];
  const requesterPid = r.f64();
  const requesterUid = r.f64();
  const targetPid = r.f64();
  const bytes = r.u64();
  const spec = r.bytes();
  const context = r.u8() === 1 ? r.string() : undefined;
  return {
    id,
    sha256,
    request: { operation, requesterPid, requesterUid, targetPid, bytes },
    spec,
    ...(context !== undefined ? { context } : {}),
  };
}
