// The keys the daemon trusts (config policies.trustRoots) and the one question the policy
// service asks of them: may these bytes, with this signature, run? A signature that is given is
// always checked, required or not: a revision is never stored with a signature nobody verified.
import type { SignatureProblem } from '../wire/index.ts';
import {
  MinisignFormatError,
  parsePublicKey,
  parseSignature,
  verifySignature,
  type KeyId,
  type PublicKey,
} from './minisign.ts';

export interface TrustRootConfig {
  /** Who holds the key, as logs, `capgate policy inspect` and the audit show it. */
  name: string;
  /** minisign public key: the `RW…` line of its .pub file. */
  publicKey: string;
}

export interface Signed {
  keyId: KeyId;
  signer: string;
  trustedComment: string;
  /** The .minisig file, kept with the revision so it can be checked again and bundled. */
  file: string;
}

export type SignatureCheck =
  | { ok: true; signed: Signed | null }
  | { ok: false; problem: SignatureProblem; message: string; hint: string };

export class TrustRootError extends Error {
  override readonly name = 'TrustRootError';
}

const SIGN_HINT =
  'sign it with a trusted key: `minisign -S -s <key> -m <file.wasm>`, then push with `--signature <file.wasm.minisig>`';

export class TrustRoots {
  private readonly byId = new Map<KeyId, { name: string; key: PublicKey }>();

  /** Throws TrustRootError naming the entry when a key does not parse or two entries collide. */
  constructor(
    roots: readonly TrustRootConfig[],
    readonly required: boolean,
  ) {
    roots.forEach((r, i) => {
      let key: PublicKey;
      try {
        key = parsePublicKey(r.publicKey);
      } catch (err) {
        throw new TrustRootError(`policies.trustRoots[${i}] (${r.name}): ${(err as Error).message}`);
      }
      const other = this.byId.get(key.keyId);
      if (other)
        throw new TrustRootError(
          `policies.trustRoots[${i}] (${r.name}) has the same key id ${key.keyId} as ${other.name}: list each key once`,
        );
      this.byId.set(key.keyId, { name: r.name, key });
    });
  }

  get size(): number {
    return this.byId.size;
  }

  /** The trust root's name for a key id, or null when the key is not (or no longer) trusted. */
  signerOf(keyId: KeyId): string | null {
    return this.byId.get(keyId)?.name ?? null;
  }

  /** Whether `bytes` may be stored and run, given the signature file sent with them (if any). */
  check(bytes: Uint8Array, signatureFile: string | undefined): SignatureCheck {
    if (signatureFile === undefined) {
      return this.required
        ? {
            ok: false,
            problem: 'signature-missing',
            message:
              'this daemon requires signed policies (policies.requireSignatures) and the revision has no signature',
            hint: SIGN_HINT,
          }
        : { ok: true, signed: null };
    }
    let sig: ReturnType<typeof parseSignature>;
    try {
      sig = parseSignature(signatureFile);
    } catch (err) {
      if (!(err instanceof MinisignFormatError)) throw err;
      return {
        ok: false,
        problem: 'signature-invalid',
        message: `the signature file is not a minisign signature: ${err.message}`,
        hint: 'send the .minisig file `minisign -S` wrote, unchanged',
      };
    }
    const root = this.byId.get(sig.keyId);
    if (root === undefined) {
      const known = [...this.byId].map(([id, r]) => `${r.name} (${id})`).join(', ') || 'none';
      return {
        ok: false,
        problem: 'signature-untrusted',
        message: `the revision is signed with key ${sig.keyId}, which is not among the daemon's trust roots (${known})`,
        hint: 'sign with a trusted key, or add this key to policies.trustRoots and restart the daemon',
      };
    }
    const v = verifySignature(bytes, sig, root.key);
    if (!v.ok)
      return {
        ok: false,
        problem: 'signature-invalid',
        message: v.message,
        hint: 'sign the exact bytes you push, and push the .minisig file unchanged',
      };
    return {
      ok: true,
      signed: { keyId: sig.keyId, signer: root.name, trustedComment: sig.trustedComment, file: signatureFile },
    };
  }
}
