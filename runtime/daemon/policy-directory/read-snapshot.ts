// One read of a policy directory: trust of the path (path-trust.ts), its files, and everything
// about them that needs no key and no compiler: names, sizes, bindings.yaml, sha256 pins. The
// signatures and the compile are the policy service's, as for an admin push.
//
//   <name>.wasm           a policy component
//   <name>.wasm.minisig   its minisign signature (the name `minisign -Sm <name>.wasm` writes)
//   bindings.yaml         operation -> policy (bindings-file.ts)
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MAX_SIGNATURE_FILE_BYTES } from '../../signing/minisign.ts';
import { POLICY_NAME_PATTERN, POLICY_NAME_RULE } from '../../wire/index.ts';
import {
  readTrustedEntry,
  trustedDataDirectory,
  UntrustedPathError,
  type TrustedDataDirectory,
} from '../path-trust.ts';
import { BINDINGS_FILE, BindingsFileError, parseBindingsFile, type DirectoryBinding } from './bindings-file.ts';

export const MAX_DIRECTORY_ENTRIES = 128;
const MAX_BINDINGS_BYTES = 64 * 1024;
const WHAT = 'the policy directory (policies.directory)';

export interface DirectoryPolicy {
  name: string;
  bytes: Uint8Array;
  sha256: string;
  signatureFile?: string;
}

export interface DirectorySnapshot {
  source: TrustedDataDirectory;
  policies: Map<string, DirectoryPolicy>;
  bindings: DirectoryBinding[];
  bindingsSha256: string;
}

/** Why the directory's contents were refused: the whole update is, the last good state stays. */
export class DirectoryError extends Error {
  override readonly name = 'DirectoryError';
  constructor(
    message: string,
    /** Not the directory's fault (the compile process was down): read it again after this many seconds. */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function problem(err: unknown): never {
  if (err instanceof DirectoryError) throw err;
  if (err instanceof UntrustedPathError || err instanceof BindingsFileError) throw new DirectoryError(err.message);
  const e = err as NodeJS.ErrnoException;
  // ENOENT in the middle of a read: the kubelet swapped generations under us; the next change reads again.
  throw new DirectoryError(
    e.code === 'ENOENT'
      ? `a file vanished while the directory was read (${e.message}); it is read again at the next change`
      : `cannot read ${WHAT}: ${e.message}`,
  );
}

function listEntries(dataDir: string): string[] {
  const names = fs.readdirSync(dataDir).filter((n) => !n.startsWith('.'));
  if (names.length > MAX_DIRECTORY_ENTRIES)
    throw new DirectoryError(
      `${dataDir} holds ${names.length} files, more than the ${MAX_DIRECTORY_ENTRIES} a policy directory may`,
    );
  return names.sort();
}

/**
 * A cheap fingerprint of what the directory holds now (names, sizes, mtimes, inodes, the
 * generation): when it has not changed since the last read, nothing needs reading again.
 */
export function fingerprintDirectory(dir: string): string {
  try {
    const target = (() => {
      try {
        return fs.readlinkSync(path.join(dir, '..data'));
      } catch {
        return '';
      }
    })();
    const dataDir = target === '' ? dir : path.join(dir, target);
    const root = fs.lstatSync(dir);
    const st = fs.lstatSync(dataDir);
    // Owners and modes too: a chmod or chown changes what may be trusted.
    const parts = [target, `${root.mode}:${root.uid}`, `${st.ino}:${st.mtimeMs}:${st.mode}:${st.uid}`];
    for (const n of listEntries(dataDir)) {
      const f = fs.lstatSync(path.join(dataDir, n));
      parts.push(`${n}:${f.size}:${f.mtimeMs}:${f.ino}:${f.mode}:${f.uid}`);
    }
    return parts.join('|');
  } catch (err) {
    return `unreadable:${(err as Error).message}`;
  }
}

export function readDirectorySnapshot(dir: string, maxPolicyBytes: number): DirectorySnapshot {
  try {
    if (!fs.existsSync(dir))
      throw new DirectoryError(
        `${WHAT} ${dir} does not exist: create it (root-owned, mode 0755) or mount the ConfigMap there; the daemon picks it up within policies.directoryPollS`,
      );
    const source = trustedDataDirectory(dir, WHAT);
    const names = listEntries(source.dataDir);
    if (!names.includes(BINDINGS_FILE))
      throw new DirectoryError(
        `${source.dataDir} has no ${BINDINGS_FILE}; a policy directory holds <name>.wasm, <name>.wasm.minisig and ${BINDINGS_FILE} (docs/fleet.md)`,
      );
    const policies = new Map<string, DirectoryPolicy>();
    const signatures = new Map<string, string>();
    let bindingsText = '';
    for (const n of names) {
      const what = `${WHAT}: ${n}`;
      if (n === BINDINGS_FILE) {
        bindingsText = readTrustedEntry(source, n, what, MAX_BINDINGS_BYTES).toString('utf8');
        continue;
      }
      const m = /^(.*)\.wasm(\.minisig)?$/.exec(n);
      if (m === null)
        throw new DirectoryError(
          `${WHAT}: unexpected file ${n}; a policy directory holds only <name>.wasm, <name>.wasm.minisig and ${BINDINGS_FILE}`,
        );
      const name = m[1]!;
      if (!POLICY_NAME_PATTERN.test(name))
        throw new DirectoryError(`${WHAT}: ${n}: "${name.slice(0, 80)}" is not a policy name (${POLICY_NAME_RULE})`);
      if (m[2] !== undefined) {
        signatures.set(name, readTrustedEntry(source, n, what, MAX_SIGNATURE_FILE_BYTES).toString('utf8'));
        continue;
      }
      const bytes = new Uint8Array(readTrustedEntry(source, n, what, maxPolicyBytes));
      if (bytes.length === 0) throw new DirectoryError(`${WHAT}: ${n} is empty (a torn write?)`);
      policies.set(name, { name, bytes, sha256: sha256(bytes) });
    }
    for (const [name, file] of signatures) {
      const p = policies.get(name);
      if (p === undefined) throw new DirectoryError(`${WHAT}: ${name}.wasm.minisig has no ${name}.wasm beside it`);
      p.signatureFile = file;
    }
    const bindings = parseBindingsFile(bindingsText);
    for (const b of bindings) {
      const p = policies.get(b.policy);
      if (p === undefined)
        throw new DirectoryError(
          `${WHAT}: ${BINDINGS_FILE} binds ${b.operation} to ${b.policy}, and there is no ${b.policy}.wasm`,
        );
      if (b.sha256 !== undefined && b.sha256 !== p.sha256)
        throw new DirectoryError(
          `${WHAT}: ${BINDINGS_FILE} pins ${b.policy} to sha256 ${b.sha256}, and ${b.policy}.wasm has sha256 ${p.sha256}: the wrong file was shipped, or the pin is stale`,
        );
    }
    return { source, policies, bindings, bindingsSha256: sha256(Buffer.from(bindingsText)) };
  } catch (err) {
    return problem(err);
  }
}
