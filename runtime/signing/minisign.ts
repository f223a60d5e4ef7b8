// minisign's formats, read and verified with node:crypto (Ed25519, BLAKE2b-512): public keys
// ("Ed" + key id + 32-byte key), signatures ("Ed" over the raw bytes, legacy, or "ED" over their
// BLAKE2b-512, minisign's default) and the global signature over signature + trusted comment,
// which is what makes the trusted comment trusted. Every failure says what is wrong in words an
// operator can act on; nothing here trusts a key, trust-roots.ts decides that.
import crypto from 'node:crypto';
import { MAX_SIGNATURE_FILE_BYTES } from '../wire/policies.ts';

/** Key ids as minisign prints them: the 8 bytes read as a little-endian u64, in upper-case hex without leading zeros. */
export type KeyId = string;

export interface PublicKey {
  keyId: KeyId;
  key: crypto.KeyObject;
}

export interface ParsedSignature {
  /** 'ED': Ed25519 over BLAKE2b-512 of the bytes (prehashed); 'Ed': over the bytes themselves. */
  algorithm: 'Ed' | 'ED';
  keyId: KeyId;
  signature: Buffer;
  trustedComment: string;
  globalSignature: Buffer;
}

export class MinisignFormatError extends Error {
  override readonly name = 'MinisignFormatError';
}

/** The largest signature file accepted (wire/policies.ts): four short lines (minisign's own comment cap is 1 KiB). */
export { MAX_SIGNATURE_FILE_BYTES };

const KEY_BYTES = 2 + 8 + 32;
const SIGNATURE_BYTES = 2 + 8 + 64;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function keyIdOf(bytes: Buffer): KeyId {
  return bytes.readBigUInt64LE(0).toString(16).toUpperCase();
}

function decodeBase64(text: string, what: string, length: number): Buffer {
  if (!BASE64.test(text)) throw new MinisignFormatError(`${what} is not base64`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== length)
    throw new MinisignFormatError(`${what} decodes to ${bytes.length} bytes, not the ${length} minisign writes`);
  return bytes;
}

/**
 * A public key as `minisign -G` prints it (`RW…`, the second line of the .pub file), or the whole
 * .pub file's text.
 */
export function parsePublicKey(text: string): PublicKey {
  const lines = text.trim().split(/\r?\n/);
  const line = (
    lines.length === 2 && lines[0]!.startsWith('untrusted comment:') ? lines[1]! : lines.length === 1 ? lines[0]! : ''
  ).trim();
  if (line === '')
    throw new MinisignFormatError(
      'a public key is one base64 line (`RW…`, as `minisign -G` prints it) or the two lines of a minisign .pub file',
    );
  const bytes = decodeBase64(line, 'the public key', KEY_BYTES);
  if (bytes.toString('latin1', 0, 2) !== 'Ed')
    throw new MinisignFormatError(
      `the public key's algorithm is "${bytes.toString('latin1', 0, 2)}", not Ed25519 ("Ed")`,
    );
  const key = crypto.createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: bytes.subarray(10).toString('base64url') },
    format: 'jwk',
  });
  return { keyId: keyIdOf(bytes.subarray(2, 10)), key };
}

/** A .minisig file: untrusted comment, signature, trusted comment, global signature. */
export function parseSignature(text: string): ParsedSignature {
  if (Buffer.byteLength(text) > MAX_SIGNATURE_FILE_BYTES)
    throw new MinisignFormatError(
      `the signature file is longer than ${MAX_SIGNATURE_FILE_BYTES} bytes; a minisign signature is four short lines`,
    );
  const lines = text.replace(/\r?\n$/, '').split(/\r?\n/);
  if (lines.length !== 4) {
    throw new MinisignFormatError(
      `a minisign signature file has 4 lines (untrusted comment, signature, trusted comment, global signature), this one has ${lines.length}${lines.length === 2 ? ' (a signify signature? sign with `minisign -S`, which adds the trusted comment)' : ''}`,
    );
  }
  const [untrusted, sig, trusted, global] = lines as [string, string, string, string];
  if (!untrusted.startsWith('untrusted comment:'))
    throw new MinisignFormatError('the first line of a signature file must start with "untrusted comment:"');
  const bytes = decodeBase64(sig.trim(), 'the signature (line 2)', SIGNATURE_BYTES);
  const algorithm = bytes.toString('latin1', 0, 2);
  if (algorithm !== 'Ed' && algorithm !== 'ED')
    throw new MinisignFormatError(`the signature's algorithm is "${algorithm}", not Ed25519 ("Ed" or "ED")`);
  const prefix = 'trusted comment: ';
  if (!trusted.startsWith(prefix))
    throw new MinisignFormatError('the third line of a signature file must start with "trusted comment: "');
  return {
    algorithm,
    keyId: keyIdOf(bytes.subarray(2, 10)),
    signature: bytes.subarray(10),
    trustedComment: trusted.slice(prefix.length),
    globalSignature: decodeBase64(global.trim(), 'the global signature (line 4)', 64),
  };
}

export type VerifyResult =
  | { ok: true }
  | { ok: false; problem: 'wrong-key' | 'bad-signature' | 'bad-trusted-comment'; message: string };

/** Checks `sig` over `bytes` and the trusted comment, with `key`. */
export function verifySignature(bytes: Uint8Array, sig: ParsedSignature, key: PublicKey): VerifyResult {
  if (sig.keyId !== key.keyId)
    return {
      ok: false,
      problem: 'wrong-key',
      message: `the signature was made with key ${sig.keyId}, not with key ${key.keyId}`,
    };
  const signed = sig.algorithm === 'ED' ? crypto.createHash('blake2b512').update(bytes).digest() : bytes;
  if (!crypto.verify(null, signed, key.key, sig.signature))
    return {
      ok: false,
      problem: 'bad-signature',
      message: `the signature does not match these bytes (key ${key.keyId}): they were changed after signing, or signed with another key of the same id`,
    };
  const global = Buffer.concat([sig.signature, Buffer.from(sig.trustedComment, 'utf8')]);
  if (!crypto.verify(null, global, key.key, sig.globalSignature))
    return {
      ok: false,
      problem: 'bad-trusted-comment',
      message: 'the trusted comment does not match its signature: it was changed after signing',
    };
  return { ok: true };
}
